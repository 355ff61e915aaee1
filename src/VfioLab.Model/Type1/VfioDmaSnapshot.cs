using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Type1;

/// <summary>One mapping (struct vfio_dma) as copied into a <see cref="VfioIommuSnapshot"/>.</summary>
/// <param name="Iova">First IOVA.</param>
/// <param name="Last">Last IOVA (inclusive), from the size MAP asked for.</param>
/// <param name="RequestedSize">The size MAP asked for.</param>
/// <param name="Size"><c>dma-&gt;size</c>: what was pinned and mapped.</param>
/// <param name="Vaddr">Owner virtual address of the first byte.</param>
/// <param name="Prot">Device permissions.</param>
/// <param name="IommuMapped"><c>iommu_mapped</c>.</param>
/// <param name="LockCap"><c>lock_cap</c>.</param>
/// <param name="VaddrInvalid"><c>vaddr_invalid</c>.</param>
/// <param name="Task">The owner task.</param>
/// <param name="Mm">The address space charged.</param>
/// <param name="LockedVm"><c>dma-&gt;locked_vm</c> in pages.</param>
/// <param name="BitmapWords">u64 words of the dirty bitmap, or -1 when there is none.</param>
/// <param name="BitmapPageSize">The page size the bitmap was sized with.</param>
/// <param name="Vpfns">The external pins as runs, in IOVA order.</param>
/// <param name="TreeRuns">The DMA tree's ranges that name this mapping (exactly its extent when sound).</param>
internal sealed record VfioDmaSnapshot(
    ulong Iova,
    ulong Last,
    ulong RequestedSize,
    ulong Size,
    ulong Vaddr,
    IommuProt Prot,
    bool IommuMapped,
    bool LockCap,
    bool VaddrInvalid,
    Process Task,
    AddressSpace Mm,
    long LockedVm,
    long BitmapWords,
    ulong BitmapPageSize,
    IReadOnlyList<VpfnRun> Vpfns,
    IReadOnlyList<ByteRange> TreeRuns)
{
    /// <summary>External pins whose page is clear in the dirty bitmap (0 without a bitmap).</summary>
    public int VpfnsNotDirty { get; init; }

    /// <summary>The mapping's IOVA extent.</summary>
    public ByteRange Range => new(Iova, Last);

    /// <inheritdoc />
    public override string ToString() => $"mapping [0x{Iova:x}, 0x{Last:x}]";
}
