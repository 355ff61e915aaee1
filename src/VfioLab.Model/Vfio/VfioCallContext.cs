using VfioLab.Host;

namespace VfioLab.Vfio;

/// <summary>
/// Who is calling into VFIO: the process (for its fd table, mm and limits). Built by the file adapters from the Host
/// layer's <see cref="SyscallContext"/>.
/// </summary>
/// <remarks>The process alone, one reference, so it travels in a register through the layers an ioctl crosses (file,
/// container, backend, handler). It carried the whole <see cref="SyscallContext"/> (machine, process, file), which no
/// VFIO handler reads beyond the process: 24 bytes passed on the stack, which each layer the JIT did not inline copied
/// with 16-byte loads that straddled the caller's 8-byte stores just made, a store-forwarding stall per copy (issue 16's
/// 4 KiB pair: 0.5-1.2 % of its samples at each of the MAP and UNMAP handlers' entries; with UNMAP's copy back, the
/// pair's user CPU 0.94-1.02 of before under load, not resolved: docs/benchmarks.md 2026-12-08 pair11).</remarks>
internal readonly record struct VfioCallContext(Process Process)
{
    /// <summary>The context of a system call on a VFIO file.</summary>
    public VfioCallContext(SyscallContext syscall)
        : this(syscall.Process)
    {
    }

    /// <summary>The calling process's memory, for copy_from_user/copy_to_user (a new object each time: ask only on a
    /// path that copies).</summary>
    public IUserMemory Memory => new ProcessUserMemory(Process);
}
