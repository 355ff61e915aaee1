namespace VfioLab.Vfio;

/// <summary>
/// The calling process's memory as the kernel reaches it through <c>copy_from_user</c> and
/// <c>copy_to_user</c>: a failed copy is EFAULT. Implemented over the Host layer's address spaces.
/// </summary>
internal interface IUserMemory
{
    /// <summary>Copies <paramref name="destination"/>.Length bytes from user address <paramref name="address"/>.</summary>
    bool TryRead(ulong address, Span<byte> destination);

    /// <summary>Copies <paramref name="source"/> to user address <paramref name="address"/>.</summary>
    bool TryWrite(ulong address, ReadOnlySpan<byte> source);
}
