using System.Runtime.InteropServices;

namespace VfioLab.Linux;

/// <summary>The libc calls the real-kernel surface needs, declared once (glibc or musl on x86-64 and arm64).</summary>
internal static unsafe partial class LibC
{
    /// <summary><c>O_RDWR</c>.</summary>
    public const int ORdwr = 0x2;

    /// <summary><c>O_CLOEXEC</c> (asm-generic value, also x86-64).</summary>
    public const int OCloexec = 0x80000;

    /// <summary>An iovec for process_vm_readv/writev.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        /// <summary>Base address.</summary>
        public void* Base;

        /// <summary>Length in bytes.</summary>
        public nuint Length;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int IoctlPointer(int fd, nuint request, void* arg);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int IoctlValue(int fd, nuint request, nuint value);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    public static partial nint Pread(int fd, void* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    public static partial nint Pwrite(int fd, void* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "process_vm_readv", SetLastError = true)]
    public static partial nint ProcessVmReadv(int pid, IoVec* local, nuint localCount, IoVec* remote, nuint remoteCount, nuint flags);

    [LibraryImport("libc", EntryPoint = "process_vm_writev", SetLastError = true)]
    public static partial nint ProcessVmWritev(int pid, IoVec* local, nuint localCount, IoVec* remote, nuint remoteCount, nuint flags);

    /// <summary>A struct pollfd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        /// <summary>The fd.</summary>
        public int Fd;

        /// <summary>Events asked for (POLLIN = 1).</summary>
        public short Events;

        /// <summary>Events returned.</summary>
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall3(long number, long a, long b, long c);

    /// <summary><c>SYS_pidfd_open</c> and <c>SYS_pidfd_getfd</c> (the same number on x86-64 and arm64).</summary>
    public const long SysPidfdOpen = 434;

    /// <summary>See <see cref="SysPidfdOpen"/>.</summary>
    public const long SysPidfdGetfd = 438;

    /// <summary><c>RLIMIT_MEMLOCK</c> (x86-64 and arm64).</summary>
    public const int RlimitMemlock = 8;

    /// <summary><c>SYS_capget</c> and <c>SYS_capset</c> on x86-64.</summary>
    public const long SysCapgetX64 = 125;

    /// <summary>See <see cref="SysCapgetX64"/>.</summary>
    public const long SysCapsetX64 = 126;

    /// <summary><c>SYS_capget</c> and <c>SYS_capset</c> on arm64 (asm-generic).</summary>
    public const long SysCapgetArm64 = 90;

    /// <summary>See <see cref="SysCapgetArm64"/>.</summary>
    public const long SysCapsetArm64 = 91;

    /// <summary>A struct rlimit.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct RLimit
    {
        /// <summary>Soft limit.</summary>
        public ulong Current;

        /// <summary>Hard limit.</summary>
        public ulong Max;
    }

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    public static partial int SetRlimit(int resource, RLimit* limit);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall2(long number, void* a, void* b);

    public const int EfdNonblock = 0x800;
    public const int EfdCloexec = 0x80000;
    public const short PollIn = 0x1;

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "getpid")]
    public static partial int GetPid();

    /// <summary>-errno of the last failed call.</summary>
    /// <summary>poll(2) for POLLIN on one fd: 1 when readable within <paramref name="timeoutMs"/>, 0 on timeout, or -errno.</summary>
    public static int PollReadable(int fd, int timeoutMs)
    {
        var p = new PollFd { Fd = fd, Events = PollIn };
        int r = Poll(&p, 1, timeoutMs);
        return r < 0 ? (int)Failed() : r > 0 && (p.Revents & PollIn) != 0 ? 1 : 0;
    }

    public static long Failed() => -(long)Marshal.GetLastPInvokeError();
}
