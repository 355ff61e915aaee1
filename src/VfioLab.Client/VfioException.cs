using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>
/// A VFIO system call the typed client made failed: carries the Linux <see cref="Errno"/> and a message naming
/// the operation and its inputs in hex (<c>map_dma iova 0x1000 vaddr 0x7f0000000000 size 0x3000: EEXIST</c>).
/// </summary>
public sealed class VfioException : Exception
{
    /// <summary>Creates the exception for <paramref name="operation"/> failing with <paramref name="errno"/>.</summary>
    /// <param name="operation">What was attempted, with its inputs in hex.</param>
    /// <param name="errno">The error the kernel (or the model) answered.</param>
    /// <param name="detail">Optional extra explanation appended to the message.</param>
    public VfioException(string operation, Errno errno, string? detail = null)
        : base(Format(operation, errno, detail))
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>The operation and its inputs, as in the message.</summary>
    public string Operation { get; }

    /// <summary>The Linux error number; <see cref="Errno.None"/> when the call succeeded but its answer was unusable
    /// (an unsupported API version, a reply the client cannot parse).</summary>
    public Errno Errno { get; }

    private static string Format(string operation, Errno errno, string? detail)
    {
        string what = errno == Errno.None ? operation : $"{operation}: {errno} ({(int)errno})";
        return detail is null ? what : $"{what}: {detail}";
    }
}
