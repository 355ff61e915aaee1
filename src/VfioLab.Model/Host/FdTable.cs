using System.Diagnostics;
using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>A process's file descriptor table (struct files_struct): lowest free fd first, at most
/// <see cref="MaxFds"/> (RLIMIT_NOFILE's usual 1024), each fd holding one reference on its file. A new
/// process's table has fds 0, 1 and 2 (stdin, stdout, stderr) open (<see cref="WithStandardStreams"/>).</summary>
/// <remarks>Lock: <c>_gate</c> (file_lock) serializes every writer of <c>_files</c> and <c>_count</c>. Files are put
/// outside the lock, so a driver's Release may close other fds. <see cref="TryGet"/> (fget, on every fd-based system
/// call) takes no lock, as the kernel's RCU fd lookup takes none: it reads the published array and its slot with
/// volatile reads and takes its reference only if the file is not already released (get_file_rcu), so it answers as
/// if it ran before or after any concurrent close (issue 16: a lock round trip per MAP and UNMAP). Writers store
/// slots with volatile writes and publish a grown array only once it holds every entry.</remarks>
internal sealed class FdTable
{
    /// <summary>The fd limit: fd numbers are &lt; 1024, else EMFILE.</summary>
    public const int MaxFds = 1024;

    /// <summary>The fds a new process starts with open: 0, 1 and 2.</summary>
    public const int StandardStreams = 3;

    private readonly Lock _gate = new();
    // Slots [0, _count) are the table; slots past it are null. Replaced (never shrunk in place) when it grows.
    private OpenFile?[] _files = new OpenFile?[StandardStreams + 1];
    private int _count;

    /// <summary>Open fds.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                int n = 0;
                for (int i = 0; i < _count; i++)
                {
                    n += _files[i] is null ? 0 : 1;
                }
                return n;
            }
        }
    }

    /// <summary>Whether an fd number is free below the limit (get_unused_fd_flags would succeed).</summary>
    public bool HasFreeFd
    {
        get
        {
            lock (_gate)
            {
                return LowestFreeLocked() >= 0;
            }
        }
    }

    /// <summary>The fds currently open, ascending.</summary>
    public int[] Snapshot()
    {
        lock (_gate)
        {
            var fds = new List<int>();
            for (int i = 0; i < _count; i++)
            {
                if (_files[i] is not null)
                {
                    fds.Add(i);
                }
            }
            return [.. fds];
        }
    }

    /// <summary>fd_install at the lowest free fd, taking over the caller's reference. Returns the fd or
    /// -EMFILE (the reference then stays with the caller).</summary>
    public int Install(OpenFile file)
    {
        lock (_gate)
        {
            int fd = LowestFreeLocked();
            if (fd < 0)
            {
                return (int)Refusals.RefuseReturn(Errno.EMFILE, "get_unused_fd_flags", "all {0} fds are in use", MaxFds);
            }
            PlaceLocked(fd, file);
            return fd;
        }
    }

    /// <summary>A table for a new process: <paramref name="console"/> (whose reference it takes over) on fd 0,
    /// dup'ed to 1 and 2, so the three share one open file, as console_on_rootfs leaves init's table and
    /// every process inherits it.</summary>
    public static FdTable WithStandardStreams(OpenFile console)
    {
        var table = new FdTable();
        int stdin = table.Install(console);
        int stdout = table.Dup(stdin);
        int stderr = table.Dup(stdin);
        Debug.Assert((stdin, stdout, stderr) == (0, 1, 2), "an empty table hands out 0, 1, 2");
        return table;
    }

    /// <summary>dup: a new fd, the lowest free one, sharing the open file behind <paramref name="fd"/>.
    /// Returns the new fd, -EBADF or -EMFILE.</summary>
    public int Dup(int fd)
    {
        lock (_gate)
        {
            if (fd < 0 || fd >= _count || _files[fd] is not { } f)
            {
                return (int)Refusals.RefuseReturn(Errno.EBADF, "dup", "fd {0} is not open", (ulong)(uint)fd);
            }
            int newFd = LowestFreeLocked();
            if (newFd < 0)
            {
                return (int)Refusals.RefuseReturn(Errno.EMFILE, "dup", "all {0} fds are in use", MaxFds);
            }
            f.Get();
            PlaceLocked(newFd, f);
            return newFd;
        }
    }

    /// <summary>fget: the file behind <paramref name="fd"/> with a reference the caller must put; false for EBADF.
    /// Lock-free (see the remarks).</summary>
    public bool TryGet(int fd, out OpenFile file)
    {
        OpenFile?[] files = Volatile.Read(ref _files);
        if ((uint)fd < (uint)files.Length && Volatile.Read(ref files[fd]) is { } f && f.TryGet())
        {
            file = f;
            return true;
        }
        file = null!;
        return false;
    }

    /// <summary>close: frees the fd and drops its reference. Returns 0 or -EBADF.</summary>
    public int Close(int fd)
    {
        OpenFile? f;
        lock (_gate)
        {
            if (fd < 0 || fd >= _count || _files[fd] is null)
            {
                return (int)Refusals.RefuseReturn(Errno.EBADF, "close_fd", "fd {0} is not open", (ulong)(uint)fd);
            }
            f = _files[fd];
            Volatile.Write(ref _files[fd], null);
        }
        f!.Put();
        return 0;
    }

    /// <summary>Closes every fd (exit_files).</summary>
    public void CloseAll()
    {
        OpenFile?[] files;
        lock (_gate)
        {
            files = _files[.._count];
            Volatile.Write(ref _files, new OpenFile?[_files.Length]);
            _count = 0;
        }
        foreach (OpenFile? f in files)
        {
            f?.Put();
        }
    }

    /// <summary>dup_fd: a copy for a forked child, the same fd numbers sharing the same open files.</summary>
    public FdTable Clone()
    {
        var copy = new FdTable();
        lock (_gate)
        {
            copy._files = new OpenFile?[_files.Length];
            for (int i = 0; i < _count; i++)
            {
                _files[i]?.Get();
                copy._files[i] = _files[i];
            }
            copy._count = _count;
        }
        return copy;
    }

    private void PlaceLocked(int fd, OpenFile file)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        if (fd == _count)
        {
            if (_count == _files.Length)
            {
                var grown = new OpenFile?[Math.Min(_files.Length * 2, MaxFds)];
                _files.CopyTo(grown, 0);
                Volatile.Write(ref _files, grown);
            }
            _count++;
        }
        Volatile.Write(ref _files[fd], file);
    }

    private int LowestFreeLocked()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        int i = Array.IndexOf(_files, null, 0, _count);
        if (i >= 0)
        {
            return i;
        }
        return _count < MaxFds ? _count : -1;
    }
}
