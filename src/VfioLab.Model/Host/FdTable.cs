using VfioLab.Abi;

namespace VfioLab.Host;

/// <summary>A process's file descriptor table (struct files_struct): lowest free fd first, at most
/// <see cref="MaxFds"/> (RLIMIT_NOFILE's usual 1024), each fd holding one reference on its file.</summary>
/// <remarks>Lock: <c>_gate</c> (file_lock) protects <c>_files</c>. Files are put outside the lock, so
/// a driver's Release may close other fds.</remarks>
internal sealed class FdTable
{
    /// <summary>The fd limit: fd numbers are &lt; 1024, else EMFILE.</summary>
    public const int MaxFds = 1024;

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
                return (int)Errno.EMFILE.AsReturn();
            }
            if (fd == _files.Count)
            {
                _files.Add(file);
            }
            else
            {
                _files[fd] = file;
            }
            return fd;
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
                return (int)Errno.EBADF.AsReturn();
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

    private int LowestFreeLocked()
    {
        System.Diagnostics.Debug.Assert(_gate.IsHeldByCurrentThread, "the fd table lock must be held");
        int i = _files.IndexOf(null);
        if (i >= 0)
        {
            return i;
        }
        return _files.Count < MaxFds ? _files.Count : -1;
    }
}
