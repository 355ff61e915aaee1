using VfioLab.Abi;

namespace VfioLab.Linux;

/// <summary>Another process's memory and files, as a server acting for it reaches them: <c>process_vm_readv</c>,
/// <c>process_vm_writev</c>, <c>pidfd_open</c> and <c>pidfd_getfd</c>. Needs ptrace access to the process (root, or
/// the same user without Yama's restriction).</summary>
public static unsafe class RemoteProcess
{
    /// <summary>Reads <paramref name="destination"/>'s length from <paramref name="address"/> in process
    /// <paramref name="pid"/>.</summary>
    /// <returns>The bytes read, from the start: fewer than asked when a page in the range is not readable (the copy
    /// stops at the first such page); 0 when the first byte is not; or -errno (-ESRCH: no such process; -EPERM).</returns>
    public static long Read(int pid, ulong address, Span<byte> destination) => Transfer(pid, address, destination, write: false);

    /// <summary>Writes <paramref name="source"/> to <paramref name="address"/> in process <paramref name="pid"/>.</summary>
    /// <returns>The bytes written from the start, fewer when a page is not writable, or -errno.</returns>
    public static long Write(int pid, ulong address, ReadOnlySpan<byte> source)
    {
        fixed (byte* p = source)
        {
            return Transfer(pid, address, new Span<byte>(p, source.Length), write: true);
        }
    }

    /// <summary><c>pidfd_open(pid, 0)</c>: a file descriptor that becomes readable when the process exits.</summary>
    /// <returns>The pidfd, or -errno.</returns>
    public static int PidfdOpen(int pid)
    {
        long r = LibC.Syscall3(LibC.SysPidfdOpen, pid, 0, 0);
        return r < 0 ? (int)LibC.Failed() : (int)r;
    }

    /// <summary><c>pidfd_getfd(pidfd, fd, 0)</c>: a duplicate, in this process, of the file behind
    /// <paramref name="fd"/> in the process of <paramref name="pidfd"/>.</summary>
    /// <returns>The new fd, or -errno (-EBADF when the process has no such fd).</returns>
    public static int PidfdGetfd(int pidfd, int fd)
    {
        long r = LibC.Syscall3(LibC.SysPidfdGetfd, pidfd, fd, 0);
        return r < 0 ? (int)LibC.Failed() : (int)r;
    }

    /// <summary>Closes a file descriptor this process holds (one <see cref="PidfdOpen"/> or
    /// <see cref="PidfdGetfd"/> returned).</summary>
    /// <returns>0 or -errno.</returns>
    public static int Close(int fd) => LibC.Close(fd) == 0 ? 0 : (int)LibC.Failed();

    /// <summary>Waits up to <paramref name="timeoutMs"/> milliseconds for <paramref name="fd"/> to become readable
    /// (a pidfd: the process exited).</summary>
    /// <returns>1 when readable, 0 on timeout, or -errno.</returns>
    public static int WaitReadable(int fd, int timeoutMs) => LibC.PollReadable(fd, timeoutMs);

    // process_vm_readv/writev in page-sized pieces, so a fault in the middle reports how far the copy got (the
    // kernel's partial count is per iovec, so one iovec per page makes it exact to the page).
    private static long Transfer(int pid, ulong address, Span<byte> buffer, bool write)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        const int Page = 4096;
        long done = 0;
        fixed (byte* local = buffer)
        {
            const int Batch = 64;
            LibC.IoVec* l = stackalloc LibC.IoVec[Batch];
            LibC.IoVec* r = stackalloc LibC.IoVec[Batch];
            while (done < buffer.Length)
            {
                int n = 0;
                long offset = done;
                while (n < Batch && offset < buffer.Length)
                {
                    ulong at = address + (ulong)offset;
                    long len = Math.Min(Page - (long)(at & (Page - 1)), buffer.Length - offset);
                    l[n] = new LibC.IoVec { Base = local + offset, Length = (nuint)len };
                    r[n] = new LibC.IoVec { Base = (void*)at, Length = (nuint)len };
                    offset += len;
                    n++;
                }
                nint got = write ? LibC.ProcessVmWritev(pid, l, (nuint)n, r, (nuint)n, 0) : LibC.ProcessVmReadv(pid, l, (nuint)n, r, (nuint)n, 0);
                if (got < 0)
                {
                    long err = LibC.Failed();
                    return done > 0 || err == Errno.EFAULT.AsReturn() ? done : err;
                }
                done += got;
                if (done < offset)
                {
                    return done;
                }
            }
        }
        return done;
    }
}
