namespace VfioLab.Scenarios.Planning;

/// <summary>A virtio-mem device: a region of <see cref="RegionBytes"/> placed after RAM, of which
/// <see cref="PluggedBytes"/> are plugged. QEMU's VFIO listener maps each plugged block on its own (so each can be
/// unplugged alone), one DMA mapping per <see cref="BlockBytes"/>: the reason virtio-mem guests reach
/// <c>dma_entry_limit</c>.</summary>
/// <param name="RegionBytes">The device's region (its <c>size</c>), a multiple of the block size.</param>
/// <param name="BlockBytes">The block size, a power of two of at least 2 MiB (virtio-mem's minimum on x86).</param>
/// <param name="PluggedBytes">Memory plugged now, a multiple of the block size, at most the region.</param>
public sealed record VirtioMemPlan(ulong RegionBytes, ulong BlockBytes, ulong PluggedBytes);
