using VfioLab.Host;

namespace VfioLab.Vfio;

/// <summary>
/// Who is calling into VFIO: the process (for its fd table, mm and limits) and the file the call
/// came through. Built by the file adapters from the Host layer's <see cref="SyscallContext"/>.
/// </summary>
internal readonly record struct VfioCallContext(SyscallContext Syscall)
{
    /// <summary>The calling process (current).</summary>
    public Process Process => Syscall.Process;

    /// <summary>The calling process's memory, for copy_from_user/copy_to_user (a new object each time: ask only on a
    /// path that copies).</summary>
    public IUserMemory Memory => new ProcessUserMemory(Syscall.Process);
}
