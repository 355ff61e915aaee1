using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Vfio;

/// <summary>copy_from_user/copy_to_user over a simulated process's address space: any access
/// failure (unmapped, protection, SIGBUS) is a failed copy, which the caller turns into EFAULT.</summary>
internal sealed class ProcessUserMemory(Process process) : IUserMemory
{
    /// <inheritdoc />
    public bool TryRead(ulong address, Span<byte> destination) =>
        destination.IsEmpty || (process.Mm is { } mm && mm.ReadMemory(new HostVirtAddr(address), destination) == AccessResult.Ok);

    /// <inheritdoc />
    public bool TryWrite(ulong address, ReadOnlySpan<byte> source) =>
        source.IsEmpty || (process.Mm is { } mm && mm.WriteMemory(new HostVirtAddr(address), source) == AccessResult.Ok);
}
