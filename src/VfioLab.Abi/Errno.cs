namespace VfioLab.Abi;

/// <summary>
/// Linux error numbers (asm-generic/errno-base.h and errno.h), with the kernel's exact values.
/// The model returns them negated from system calls, as the kernel does.
/// </summary>
public enum Errno
{
    /// <summary>Success; not an error.</summary>
    None = 0,
    /// <summary>Operation not permitted.</summary>
    EPERM = 1,
    /// <summary>No such file or directory.</summary>
    ENOENT = 2,
    /// <summary>No such process.</summary>
    ESRCH = 3,
    /// <summary>Interrupted system call.</summary>
    EINTR = 4,
    /// <summary>I/O error.</summary>
    EIO = 5,
    /// <summary>No such device or address.</summary>
    ENXIO = 6,
    /// <summary>Argument list too long.</summary>
    E2BIG = 7,
    /// <summary>Bad file number.</summary>
    EBADF = 9,
    /// <summary>Try again.</summary>
    EAGAIN = 11,
    /// <summary>Out of memory.</summary>
    ENOMEM = 12,
    /// <summary>Permission denied.</summary>
    EACCES = 13,
    /// <summary>Bad address.</summary>
    EFAULT = 14,
    /// <summary>Device or resource busy.</summary>
    EBUSY = 16,
    /// <summary>File exists.</summary>
    EEXIST = 17,
    /// <summary>No such device.</summary>
    ENODEV = 19,
    /// <summary>Not a directory.</summary>
    ENOTDIR = 20,
    /// <summary>Is a directory.</summary>
    EISDIR = 21,
    /// <summary>Invalid argument.</summary>
    EINVAL = 22,
    /// <summary>File table overflow.</summary>
    ENFILE = 23,
    /// <summary>Too many open files.</summary>
    EMFILE = 24,
    /// <summary>Not a typewriter: inappropriate ioctl for device.</summary>
    ENOTTY = 25,
    /// <summary>No space left on device.</summary>
    ENOSPC = 28,
    /// <summary>Illegal seek.</summary>
    ESPIPE = 29,
    /// <summary>Math result not representable.</summary>
    ERANGE = 34,
    /// <summary>Function not implemented.</summary>
    ENOSYS = 38,
    /// <summary>Value too large for defined data type.</summary>
    EOVERFLOW = 75,
    /// <summary>File descriptor in bad state.</summary>
    EBADFD = 77,
    /// <summary>Operation not supported on transport endpoint.</summary>
    EOPNOTSUPP = 95,
    /// <summary>Operation timed out.</summary>
    ETIMEDOUT = 110,
}

/// <summary>Conversions between <see cref="Errno"/>, its name and the kernel's negative return value.</summary>
public static class ErrnoExtensions
{
    /// <summary>The kernel's return value for this error: <c>-errno</c>.</summary>
    public static long AsReturn(this Errno errno) => -(long)errno;

    /// <summary>The error a negative system-call return value stands for, or <see cref="Errno.None"/> for success.</summary>
    public static Errno FromReturn(long ret) => ret >= 0 ? Errno.None : (Errno)(int)(-ret);

    /// <summary>Parses a Linux errno name (<c>EINVAL</c>); case-sensitive as in C. Only a single defined name
    /// matches: no numbers, no surrounding spaces, no comma lists.</summary>
    public static bool TryParse(string name, out Errno errno)
    {
        foreach (Errno candidate in Enum.GetValues<Errno>())
        {
            if (candidate != Errno.None && string.Equals(candidate.ToString(), name, StringComparison.Ordinal))
            {
                errno = candidate;
                return true;
            }
        }
        errno = Errno.None;
        return false;
    }
}
