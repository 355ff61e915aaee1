namespace VfioLab.Abi;

/// <summary>
/// A fixed-layout struct of the VFIO uAPI that can be read from and written to the bytes of a user buffer,
/// little-endian, at the offsets of the x86-64 C layout. <see cref="AbiStruct"/> holds the generic helpers.
/// </summary>
/// <typeparam name="TSelf">The implementing struct.</typeparam>
public interface IAbiStruct<TSelf>
    where TSelf : struct, IAbiStruct<TSelf>
{
    /// <summary><c>sizeof</c> of the C struct (its fixed part, without any flexible array).</summary>
    abstract static int SizeOf { get; }

    /// <summary>Decodes the struct from <paramref name="source"/>, which holds at least <see cref="SizeOf"/> bytes.</summary>
    abstract static TSelf ReadUnchecked(ReadOnlySpan<byte> source);

    /// <summary>Writes all <see cref="SizeOf"/> bytes of the struct to the start of <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SizeOf"/>.</exception>
    void Write(Span<byte> destination);
}
