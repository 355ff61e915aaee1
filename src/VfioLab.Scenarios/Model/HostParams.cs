namespace VfioLab.Scenarios.Model;

/// <summary>The vfio_iommu_type1 / vfio module parameters; defaults are the kernel's.</summary>
internal sealed record HostParams(uint DmaEntryLimit, bool DisableHugepages, bool AllowUnsafeInterrupts, bool StrictMmioMaps)
{
    public const uint DefaultDmaEntryLimit = 65535;

    public static HostParams Default { get; } = new(DefaultDmaEntryLimit, false, false, true);
}
