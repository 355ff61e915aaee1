namespace VfioLab.Scenarios.Import;

/// <summary>
/// The host a QEMU trace is replayed on (<see cref="QemuTraceImporter.Import"/>): what the trace cannot say. Every
/// property left unset is guessed: host RAM from what the trace maps, the device and group from a traced
/// <c>vfio_attach_device</c> (else <c>0000:01:00.0</c> in group 1), the rest the scenario format's defaults.
/// </summary>
public sealed record QemuTraceImportOptions
{
    /// <summary>The scenario's name (letters, digits, <c>.</c>, <c>_</c>, <c>-</c>); null: <c>qemu-trace-</c> and the
    /// log's file name.</summary>
    public string? Name { get; init; }

    /// <summary>Host RAM in bytes; null: every process range the trace maps from, plus 1 GiB, in whole GiB.</summary>
    public ulong? Memory { get; init; }

    /// <summary>The host's PAGE_SIZE: 4 KiB, 16 KiB or 64 KiB.</summary>
    public ulong PageSize { get; init; } = 4096;

    /// <summary>The IOMMU hardware profile: <c>vt-d</c>, <c>amd-vi</c> or <c>smmu-v3</c> (the replay is type1's).</summary>
    public string Iommu { get; init; } = "vt-d";

    /// <summary>The IOMMU's page sizes, overriding the profile's bitmap; null: the profile's.</summary>
    public IReadOnlyList<ulong>? IommuPageSizes { get; init; }

    /// <summary>The IOMMU's address width: the aperture is [0, 2^bits - 1] (a consumer Intel part has 39); null: the
    /// profile's.</summary>
    public int? ApertureBits { get; init; }

    /// <summary>The kernel profile (<c>VfioLab.Lab.KernelProfiles</c>).</summary>
    public string Kernel { get; init; } = VfioLab.Lab.KernelProfiles.Seeds;

    /// <summary>type1's <c>dma_entry_limit</c>; null: what QEMU's "possibly running out of DMA mappings" warning
    /// reports (<see cref="QemuTrace.DmaEntryLimit"/>), else the kernel's default, 65535.</summary>
    public uint? DmaEntryLimit { get; init; }

    /// <summary>The replaying process's RLIMIT_MEMLOCK in bytes; null: unlimited (QEMU under libvirt gets what it
    /// needs).</summary>
    public ulong? Memlock { get; init; }

    /// <summary>The device's PCI address (<c>0000:01:00.0</c>); null: the traced one, else <c>0000:01:00.0</c>.</summary>
    public string? Device { get; init; }

    /// <summary>The device's IOMMU group; null: the traced one, else 1.</summary>
    public int? Group { get; init; }
}
