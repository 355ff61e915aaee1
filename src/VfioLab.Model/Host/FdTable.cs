using System.Diagnostics;
using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>A process's file descriptor table (struct files_struct): lowest free fd first, at most
/// <see cref="MaxFds"/> (RLIMIT_NOFILE's usual 1024), each fd holding one reference on its file. A new
/// process's table has fds 0, 1 and 2 (stdin, stdout, stderr) open (<see cref="WithStandardStreams"/>).</summary>
/// <remarks>Lock: <c>_gate</c> (file_lock) protects <c>_files</c>. Files are put outside the lock, so
/// a driver's Release may close other fds.</remarks>
internal sealed class FdTable
{
    /// <summary>The fd limit: fd numbers are &lt; 1024, else EMFILE.</summary>
    public const int MaxFds = 1024;

    /// <summary>The fds a new process starts with open: 0, 1 and 2.</summary>
    public const int StandardStreams = 3;

    private readonly Lock _gate = new();
    private readonly List<OpenFile?> _files = [];

    /// <summary>Open fds.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _files.Count(f => f is not null);
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
            for (int i = 0; i < _files.Count; i++)
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
            if (fd < 0 || fd >= _files.Count || _files[fd] is not { } f)
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

    /// <summary>fget: the file behind <paramref name="fd"/> with a reference the caller must put; false for EBADF.</summary>
    public bool TryGet(int fd, out OpenFile file)
    {
        lock (_gate)
        {
            if (fd < 0 || fd >= _files.Count || _files[fd] is not { } f)
            {
                file = null!;
                return false;
            }
            f.Get();
            file = f;
            return true;
        }
    }

    /// <summary>close: frees the fd and drops its reference. Returns 0 or -EBADF.</summary>
    public int Close(int fd)
    {
        OpenFile? f;
        lock (_gate)
        {
            if (fd < 0 || fd >= _files.Count || _files[fd] is null)
            {
                return (int)Refusals.RefuseReturn(Errno.EBADF, "close_fd", "fd {0} is not open", (ulong)(uint)fd);
            }
            f = _files[fd];
            _files[fd] = null;
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
            files = [.. _files];
            _files.Clear();
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
            foreach (OpenFile? f in _files)
            {
                f?.Get();
                copy._files.Add(f);
            }
        }
        return copy;
    }

    private void PlaceLocked(int fd, OpenFile file)
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        if (fd == _files.Count)
        {
            _files.Add(file);
        }
        else
        {
            _files[fd] = file;
        }
    }

    private int LowestFreeLocked()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        int i = _files.IndexOf(null);
        if (i >= 0)
        {
            return i;
        }
        return _files.Count < MaxFds ? _files.Count : -1;
    }
}
