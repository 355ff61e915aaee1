namespace VfioLab.Lab;

/// <summary>What a device's IOMMU makes of one IOVA: the physical address it reaches, or why it faults.</summary>
/// <param name="Physical">The physical address, when <see cref="Ok"/>.</param>
/// <param name="PageSize">The size of the IOMMU page (IOPTE or TCE) that translates it, when <see cref="Ok"/>.</param>
/// <param name="FaultReason">Why it does not translate, when it does not.</param>
public readonly record struct LabTranslation(ulong Physical, ulong PageSize, DmaFaultReason? FaultReason)
{
    /// <summary>Whether the IOVA translates.</summary>
    public bool Ok => FaultReason is null;
}
