namespace VfioLab.Lab;

/// <summary>
/// One run of an IOMMU domain's page table: leaf IOPTEs of <see cref="PageSize"/> bytes, one after the other from
/// <see cref="Iova"/> to <see cref="Last"/>, translating to physical memory contiguous from <see cref="Physical"/>,
/// all with the same permissions (what a walk over the kernel's IOPTEs finds).
/// </summary>
/// <param name="Iova">The first IOVA of the run.</param>
/// <param name="Last">The last IOVA of the run, inclusive (a run may end at 2^64-1).</param>
/// <param name="Physical">The physical address <see cref="Iova"/> translates to.</param>
/// <param name="PageSize">The size of each leaf IOPTE of the run.</param>
/// <param name="Readable">The device may read through it (IOMMU_READ).</param>
/// <param name="Writable">The device may write through it (IOMMU_WRITE).</param>
public readonly record struct LabIommuRun(ulong Iova, ulong Last, ulong Physical, ulong PageSize, bool Readable, bool Writable)
{
    /// <summary>The number of leaf IOPTEs in the run.</summary>
    public ulong EntryCount => ((Last - Iova) / PageSize) + 1;
}
