using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>Turns a raw system-call result (&gt;= 0 or -errno) into a value or a <see cref="VfioException"/>.</summary>
internal static class Syscall
{
    /// <summary>Returns <paramref name="result"/> when it is not negative; throws for -errno.</summary>
    /// <param name="result">What the surface returned.</param>
    /// <param name="operation">Builds the operation's description only when needed.</param>
    public static long Check(long result, Func<string> operation)
    {
        if (result < 0)
        {
            throw new VfioException(operation(), ErrnoExtensions.FromReturn(result));
        }
        return result;
    }

    /// <summary>An ioctl whose argument is <paramref name="arg"/>, checked.</summary>
    public static long Ioctl(ISyscallSurface sys, int fd, uint request, Span<byte> arg, Func<string> operation) =>
        Check(sys.Ioctl(fd, request, arg), operation);

    /// <summary>An ioctl whose only success is 0: a positive answer is a failure too (sPAPR's MAP_DMA answers 1 for an
    /// IOVA off a TCE page, its REGISTER_MEMORY the page count when it could pin only part of the range).</summary>
    public static void IoctlZero(ISyscallSurface sys, int fd, uint request, Span<byte> arg, Func<string> operation)
    {
        long result = Ioctl(sys, fd, request, arg, operation);
        if (result != 0)
        {
            throw new VfioException(operation(), Errno.None, $"the kernel answered {result} where only 0 means success");
        }
    }

    /// <summary>An ioctl whose argument is an integer, checked.</summary>
    public static long Ioctl(ISyscallSurface sys, int fd, uint request, ulong value, Func<string> operation) =>
        Check(sys.Ioctl(fd, request, value), operation);
}
