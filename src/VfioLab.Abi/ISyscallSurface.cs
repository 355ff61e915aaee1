namespace VfioLab.Abi;

/// <summary>
/// The system calls one process makes to use VFIO. Every method answers as Linux does: a
/// non-negative result, or <c>-errno</c>. Implemented by the simulated kernel (one surface per
/// simulated process) and by <c>VfioLab.Linux</c> over libc; the typed client works on either.
/// </summary>
/// <remarks>
/// An ioctl's argument is the user buffer the request's pointer refers to: the kernel reads the
/// struct from it and writes results back into it. Bytes the kernel would read past the end of the
/// buffer count as unmapped memory (EFAULT). Pointers inside structs (a MAP_DMA <c>vaddr</c>, a dirty
/// bitmap's <c>data</c>) are addresses in this process's address space.
/// </remarks>
public interface ISyscallSurface
{
    /// <summary>The process id.</summary>
    int Pid { get; }

    /// <summary>open(2). Returns the new fd, or -ENOENT, -ENODEV, -EBUSY, -EPERM, ...</summary>
    int Open(string path);

    /// <summary>close(2). Returns 0 or -EBADF.</summary>
    int Close(int fd);

    /// <summary>ioctl(2) whose argument is a pointer to <paramref name="arg"/>.</summary>
    long Ioctl(int fd, uint request, Span<byte> arg);

    /// <summary>ioctl(2) whose argument is an integer passed by value.</summary>
    long Ioctl(int fd, uint request, ulong value);

    /// <summary>pread(2): reads a file at an offset (a VFIO device fd's region space). Returns bytes read or -errno.</summary>
    long Pread(int fd, Span<byte> destination, ulong offset);

    /// <summary>pwrite(2): writes a file at an offset (e.g. a PCI command-register write). Returns bytes written or -errno.</summary>
    long Pwrite(int fd, ReadOnlySpan<byte> source, ulong offset);

    /// <summary>mmap(2). Returns the mapped address, or -errno.</summary>
    long Mmap(ulong address, ulong length, MemoryProtection protection, MmapFlags flags, int fd, ulong offset);

    /// <summary>munmap(2). Returns 0 or -EINVAL.</summary>
    int Munmap(ulong address, ulong length);

    /// <summary>Reads this process's memory as the CPU would. Returns 0, -EFAULT for an unmapped or
    /// unreadable address, or -EIO where the access would raise SIGBUS.</summary>
    int ReadMemory(ulong address, Span<byte> destination);

    /// <summary>Writes this process's memory as the CPU would. Returns 0, -EFAULT, or -EIO for SIGBUS.</summary>
    int WriteMemory(ulong address, ReadOnlySpan<byte> source);

    /// <summary>fork(2): a child process with a copy of this address space (see the Host layer for
    /// private pages) and a copy of the fd table sharing the open files. Returns the child's surface.</summary>
    ISyscallSurface Fork();

    /// <summary>exit(2): closes every fd and tears down the address space.</summary>
    void Exit();
}
