using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>
/// One open VFIO file of a process (container, group or device fd): the surface it belongs to, its descriptor, and a
/// <see cref="Dispose"/> that closes it once.
/// </summary>
public abstract class VfioFile : IDisposable
{
    private int _closed;

    private protected VfioFile(ISyscallSurface sys, int fd)
    {
        Sys = sys;
        Fd = fd;
    }

    /// <summary>The process the fd belongs to.</summary>
    public ISyscallSurface Sys { get; }

    /// <summary>The file descriptor.</summary>
    public int Fd { get; }

    /// <summary>Closes the fd (once; later calls do nothing). The kernel releases what the file held when its last
    /// reference goes.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Sys.Close(Fd);
        }
        GC.SuppressFinalize(this);
    }
}
