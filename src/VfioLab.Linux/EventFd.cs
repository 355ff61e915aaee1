namespace VfioLab.Linux;

/// <summary>
/// eventfd(2) counters as a VFIO user hands them to VFIO_DEVICE_SET_IRQS: created non-blocking, read (which returns the
/// count and clears it, or EAGAIN when nothing was signalled), and waited on with poll(2) without consuming the count.
/// </summary>
public static unsafe class EventFd
{
    /// <summary>eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC): the fd, or -errno.</summary>
    public static long Create()
    {
        int fd = LibC.EventFd(0, LibC.EfdNonblock | LibC.EfdCloexec);
        return fd < 0 ? LibC.Failed() : fd;
    }

    /// <summary>A non-blocking read of <paramref name="fd"/>: the count signalled since the last read (then zero), or
    /// -errno (-EAGAIN when nothing was signalled).</summary>
    public static long Read(int fd)
    {
        ulong count = 0;
        nint n = LibC.Read(fd, &count, sizeof(ulong));
        if (n < 0)
        {
            return LibC.Failed();
        }
        return n == sizeof(ulong) ? (long)count : -(long)Abi.Errno.EIO;
    }

    /// <summary>Whether <paramref name="fd"/> becomes readable (was signalled) within <paramref name="timeout"/>; the
    /// count is left for a later <see cref="Read"/>.</summary>
    public static bool WaitSignalled(int fd, TimeSpan timeout) =>
        LibC.PollReadable(fd, (int)Math.Clamp(timeout.TotalMilliseconds, 0, int.MaxValue)) > 0;

    /// <summary>Signals <paramref name="fd"/> by <paramref name="value"/> (an 8-byte write, adding to its count).</summary>
    /// <returns>0 or -errno.</returns>
    public static int Signal(int fd, ulong value)
    {
        nint n = LibC.Write(fd, &value, sizeof(ulong));
        return n == sizeof(ulong) ? 0 : n < 0 ? (int)LibC.Failed() : -(int)Abi.Errno.EIO;
    }
}
