using VfioLab.Addressing;

namespace VfioLab.Iommu;

/// <summary>
/// One maximal run of an IOMMU domain's page table as reported to callers: leaf IOPTEs of
/// <see cref="PageSize"/> bytes covering <see cref="Iova"/>, mapping physical memory from
/// <see cref="Phys"/> contiguously (the model's view of a walk over the kernel's IOPTEs).
/// </summary>
internal readonly record struct MappedRun(ByteRange Iova, PhysAddr Phys, ulong PageSize, IommuProt Prot)
{
    /// <summary>Number of leaf IOPTEs in the run.</summary>
    public ulong EntryCount => (Iova.Last - Iova.Start) / PageSize + 1;

    /// <inheritdoc />
    public override string ToString() => $"iova {Iova} -> phys {Phys} {PageSizeBitmap.FormatSize(PageSize)} x {EntryCount} {Prot}";
}
