namespace VfioLab.Abi;

/// <summary>
/// Generic reading and writing of <see cref="IAbiStruct{TSelf}"/> values, including the partial copies the
/// kernel makes: it reads only <c>minsz</c> bytes of an argument and writes back only <c>min(argsz, sizeof)</c>.
/// </summary>
public static class AbiStruct
{
    /// <summary>The largest <c>sizeof</c> of any struct in this project; partial copies use a stack buffer this big.</summary>
    private const int MaxStackSize = 64;

    /// <summary>Reads a whole <typeparamref name="T"/> from the start of <paramref name="source"/>.</summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="source"/> is shorter than the struct.</returns>
    public static bool TryRead<T>(ReadOnlySpan<byte> source, out T value)
        where T : struct, IAbiStruct<T>
    {
        if (source.Length < T.SizeOf)
        {
            value = default;
            return false;
        }
        value = T.ReadUnchecked(source);
        return true;
    }

    /// <summary>
    /// Reads only the first <paramref name="length"/> bytes of a <typeparamref name="T"/>, as <c>copy_from_user</c>
    /// of <c>minsz</c> bytes would: every byte from <paramref name="length"/> on reads as zero, so a field that lies
    /// wholly past <paramref name="length"/> is 0.
    /// </summary>
    /// <returns><see langword="false"/> (and a default value) when <paramref name="length"/> is negative, larger than
    /// the struct, or larger than <paramref name="source"/>.</returns>
    public static bool TryReadPrefix<T>(ReadOnlySpan<byte> source, int length, out T value)
        where T : struct, IAbiStruct<T>
    {
        if (length < 0 || length > T.SizeOf || length > source.Length)
        {
            value = default;
            return false;
        }
        if (length == T.SizeOf)
        {
            // The whole struct (a MAP_DMA's minsz is its size): no zero-padded copy to read it from.
            value = T.ReadUnchecked(source);
            return true;
        }
        Span<byte> buffer = stackalloc byte[MaxStackSize];
        buffer = buffer[..T.SizeOf];
        buffer.Clear();
        source[..length].CopyTo(buffer);
        value = T.ReadUnchecked(buffer);
        return true;
    }

    /// <summary>
    /// Writes only the first <paramref name="length"/> bytes of <paramref name="value"/>, as <c>copy_to_user</c> of
    /// <c>min(argsz, sizeof)</c> bytes would; bytes of <paramref name="destination"/> from <paramref name="length"/> on
    /// are left as they were.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative, larger than the struct, or
    /// larger than <paramref name="destination"/>.</exception>
    public static void WritePrefix<T>(in T value, Span<byte> destination, int length)
        where T : struct, IAbiStruct<T>
    {
        if (length < 0 || length > T.SizeOf || length > destination.Length)
        {
            AbiThrowHelper.ThrowLengthOutOfRange(length, T.SizeOf, destination.Length);
        }
        Span<byte> buffer = stackalloc byte[MaxStackSize];
        buffer = buffer[..T.SizeOf];
        value.Write(buffer);
        buffer[..length].CopyTo(destination);
    }

    /// <summary>The struct's <see cref="IAbiStruct{TSelf}.SizeOf"/> bytes, as a new array.</summary>
    public static byte[] ToArray<T>(in T value)
        where T : struct, IAbiStruct<T>
    {
        byte[] bytes = new byte[T.SizeOf];
        value.Write(bytes);
        return bytes;
    }

    /// <summary>Decodes a nested struct from a span the caller has already checked to be long enough.</summary>
    internal static T ReadUnchecked<T>(ReadOnlySpan<byte> source)
        where T : struct, IAbiStruct<T> => T.ReadUnchecked(source);

    /// <summary>Throws unless <paramref name="destination"/> can hold <paramref name="size"/> bytes.</summary>
    internal static void CheckDestination(Span<byte> destination, int size)
    {
        if (destination.Length < size)
        {
            AbiThrowHelper.ThrowDestinationTooShort(destination.Length, size);
        }
    }
}
