using VfioLab.Abi;

namespace VfioLab.Lab;

/// <summary>
/// A <see cref="LabProcess"/>'s system-call surface as the public API hands it out: the simulated process's own
/// surface, plus the host's invariant check after each call when <see cref="LabHost.Checking"/> asks for it. A fork
/// through it registers the child with the host, so the child is a <see cref="LabProcess"/> too.
/// </summary>
internal sealed class LabSyscalls(LabHost host, LabProcess process) : ISyscallSurface
{
    private readonly Host.SimulatedProcess _inner = process.Process.Syscalls;

    public int Pid => _inner.Pid;

    public int Open(string path) => After(_inner.Open(path), "open");

    public int Close(int fd) => After(_inner.Close(fd), "close");

    public long Ioctl(int fd, uint request, Span<byte> arg) => After(_inner.Ioctl(fd, request, arg), "ioctl");

    public long Ioctl(int fd, uint request, ulong value) => After(_inner.Ioctl(fd, request, value), "ioctl");

    public long Pread(int fd, Span<byte> destination, ulong offset) => After(_inner.Pread(fd, destination, offset), "pread");

    public long Pwrite(int fd, ReadOnlySpan<byte> source, ulong offset) => After(_inner.Pwrite(fd, source, offset), "pwrite");

    public long Mmap(ulong address, ulong length, MemoryProtection protection, MmapFlags flags, int fd, ulong offset) =>
        After(_inner.Mmap(address, length, protection, flags, fd, offset), "mmap");

    public int Munmap(ulong address, ulong length) => After(_inner.Munmap(address, length), "munmap");

    public int ReadMemory(ulong address, Span<byte> destination) => After(_inner.ReadMemory(address, destination), "read memory");

    public int WriteMemory(ulong address, ReadOnlySpan<byte> source) => After(_inner.WriteMemory(address, source), "write memory");

    public ISyscallSurface Fork()
    {
        Errno e = process.TryFork(out LabProcess? child);
        if (e != Errno.None)
        {
            // The surface's contract: fork that cannot return a child throws (Process.TryFork gives the errno).
            throw new InvalidOperationException($"fork of {process} failed: {e}");
        }
        After(0, "fork");
        return child!.Syscalls;
    }

    public void Exit()
    {
        _inner.Exit();
        After(0, "exit");
    }

    private T After<T>(T result, string call)
    {
        host.Simulated.Machine.Changes.EndCall();
        host.AfterCall(call, process);
        return result;
    }
}
