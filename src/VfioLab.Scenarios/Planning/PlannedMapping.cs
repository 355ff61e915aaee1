namespace VfioLab.Scenarios.Planning;

/// <summary>One VFIO_IOMMU_MAP_DMA the VMM issues for a section of a device's address space, as QEMU's memory
/// listener would: guest RAM, a plugged virtio-mem block, or a device BAR mapped for peer-to-peer.</summary>
/// <param name="Container">The container it goes to, numbered from 1 as the model numbers them (one container, or
/// one per device with a vIOMMU).</param>
/// <param name="Iova">The IOVA (the guest-physical address in passthrough mode).</param>
/// <param name="Size">Its size in bytes.</param>
/// <param name="Kind"><c>ram</c>, <c>virtio-mem</c> or <c>bar</c>.</param>
/// <param name="Label">What the section is (<c>ram below 4G</c>, <c>gpu0 BAR1</c>).</param>
/// <param name="Charged">Whether its pages are pinned and charged to <c>locked_vm</c> (RAM in a container with an
/// IOMMU domain; never a BAR, which is PFNMAP memory without struct pages).</param>
public sealed record PlannedMapping(int Container, ulong Iova, ulong Size, string Kind, string Label, bool Charged)
{
    /// <summary>The largest physically contiguous, naturally aligned unit the host backs it with (bounds its IOPTEs).</summary>
    internal ulong Contiguity { get; init; }

    /// <summary>Where the memory comes from in the VMM: <c>ram</c>, <c>vmem</c> or <c>bar:DEVICE:INDEX</c>, and the
    /// byte offset into it.</summary>
    internal string Source { get; init; } = "ram";

    internal ulong SourceOffset { get; init; }

    /// <summary>The physical address behind <see cref="Iova"/>, relative to a base aligned to every IOMMU page size
    /// (RAM from frame 0 of the model's fresh host; a BAR at its naturally aligned base).</summary>
    internal ulong PhysOffset { get; init; }
}
