using VfioLab.Abi;
using VfioLab.Addressing;

namespace VfioLab.Iommu;

/// <summary>
/// A kind of IOMMU hardware and its driver as the IOMMU core sees it: page-size bitmap, aperture
/// (<c>iommu_domain_geometry</c>), the reserved regions its driver reports (<c>get_resv_regions</c>),
/// interrupt-remapping (isolated MSI) and snoop-control capabilities, and the errno its
/// <c>map_pages</c> returns for an IOVA outside the aperture. The kernel counterpart is a
/// <c>struct iommu_ops</c> plus its driver's constants; <see cref="OpsName"/> is the ops identity.
/// </summary>
/// <remarks>Immutable. Overrides (<see cref="WithOverrides"/>) return a new profile with the same ops.</remarks>
internal sealed record IommuHardwareProfile
{
    /// <summary>x86 MSI doorbell window reported as IOMMU_RESV_MSI by the Intel and AMD drivers
    /// (intel: IOAPIC_RANGE_START/END; amd: MSI_RANGE_START/END in drivers/iommu/amd/iommu.c).</summary>
    public static readonly ByteRange X86MsiWindow = new(0xfee00000, 0xfeefffff);

    /// <summary>AMD's HyperTransport hole, IOMMU_RESV_RESERVED (HT_RANGE_START/END, drivers/iommu/amd/iommu.c).</summary>
    public static readonly ByteRange AmdHyperTransportHole = new(0xfd00000000, 0xffffffffff);

    /// <summary>ARM SMMU software MSI window (MSI_IOVA_BASE 0x8000000, MSI_IOVA_LENGTH 0x100000 in
    /// drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c), IOMMU_RESV_SW_MSI.</summary>
    public static readonly ByteRange ArmSwMsiWindow = new(0x8000000, 0x80fffff);

    /// <summary>Intel VT-d second-stage tables: 4K|2M|1G (1G needs cap_super_page 1GB support,
    /// assumed present), 48-bit guest address width (4-level, agaw 2); aperture_end =
    /// __DOMAIN_MAX_ADDR(gaw). intel_iommu_map returns -EFAULT when the address is beyond the
    /// width ("iommu width (%d) is not sufficient for the mapped address"). Interrupt remapping
    /// gives isolated MSI; snoop control allows enforce_cache_coherency.</summary>
    public static readonly IommuHardwareProfile VtD = new(
        "vt-d", "intel-iommu",
        PageSizeBitmap.Size4K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G,
        new ByteRange(0, (1UL << 48) - 1),
        [new ReservedRegion(X86MsiWindow, ReservedRegionType.Msi)],
        isolatedMsi: true, canEnforceCacheCoherency: true, outOfApertureError: Errno.EFAULT);

    /// <summary>AMD-Vi v1 page table: AMD_IOMMU_PGSIZES = GENMASK_ULL(51, 12) ^ SZ_512G (every
    /// power of two from 4 KiB to 2^51 except 512 GiB, "not supported due to a hardware bug";
    /// drivers/iommu/amd/amd_iommu_types.h). Aperture: dma_max_address() returns ~0ULL for v1, the
    /// whole 64-bit space. The driver has no aperture check of its own, so the out-of-aperture errno
    /// (EINVAL) is only reachable through an overridden aperture: a model choice.</summary>
    public static readonly IommuHardwareProfile AmdVi = new(
        "amd-vi", "amd-iommu",
        (((1UL << 52) - 1) & ~((1UL << 12) - 1)) ^ (1UL << 39),
        new ByteRange(0, ulong.MaxValue),
        [new ReservedRegion(X86MsiWindow, ReservedRegionType.Msi),
         new ReservedRegion(AmdHyperTransportHole, ReservedRegionType.Reserved)],
        isolatedMsi: true, canEnforceCacheCoherency: true, outOfApertureError: Errno.EINVAL);

    /// <summary>ARM SMMUv3 with the 4 KiB granule (io-pgtable-arm LPAE: 4K|2M|1G), 48-bit input
    /// address size, aperture [0, 2^ias-1]. arm_lpae_map_pages returns -ERANGE for an IOVA beyond
    /// ias (io-pgtable-arm.c, "iaext"). Software-managed MSI window; isolated MSI through a GICv3 ITS.</summary>
    public static readonly IommuHardwareProfile SmmuV3 = new(
        "smmu-v3", "arm-smmu-v3",
        PageSizeBitmap.Size4K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G,
        new ByteRange(0, (1UL << 48) - 1),
        [new ReservedRegion(ArmSwMsiWindow, ReservedRegionType.SwMsi)],
        isolatedMsi: true, canEnforceCacheCoherency: true, outOfApertureError: Errno.ERANGE);

    /// <summary>ARM SMMUv3 with the 64 KiB granule: 64K|512M (io-pgtable-arm LPAE 64K granule).</summary>
    public static readonly IommuHardwareProfile SmmuV3Granule64K = SmmuV3 with
    {
        Name = "smmu-v3-64k",
        PgsizeBitmap = PageSizeBitmap.Size64K | PageSizeBitmap.Size512M,
    };

    /// <summary>POWER sPAPR TCE tables: 4K|64K|16M TCE page sizes, default 32-bit DMA window
    /// [0, 2 GiB) (arch/powerpc/kernel/iommu.c): the aperture is the PE's <c>tce32_start</c>/<c>tce32_size</c>,
    /// the bitmap its TCE page sizes (<see cref="TceTableGroup"/>).</summary>
    public static readonly IommuHardwareProfile SpaprTce = new(
        "spapr-tce", "spapr-tce-iommu",
        PageSizeBitmap.Size4K | PageSizeBitmap.Size64K | PageSizeBitmap.Size16M,
        new ByteRange(0, (2UL << 30) - 1),
        [],
        isolatedMsi: true, canEnforceCacheCoherency: false, outOfApertureError: Errno.EINVAL);

    private IommuHardwareProfile(
        string name, string opsName, ulong pgsizeBitmap, ByteRange aperture, IReadOnlyList<ReservedRegion> reservedRegions,
        bool isolatedMsi, bool canEnforceCacheCoherency, Errno outOfApertureError)
    {
        Name = name;
        OpsName = opsName;
        PgsizeBitmap = pgsizeBitmap;
        Aperture = aperture;
        ReservedRegions = reservedRegions;
        IsolatedMsi = isolatedMsi;
        CanEnforceCacheCoherency = canEnforceCacheCoherency;
        OutOfApertureError = outOfApertureError;
    }

    /// <summary>Scenario name: <c>vt-d</c>, <c>amd-vi</c>, <c>smmu-v3</c>, <c>smmu-v3-64k</c>, <c>spapr-tce</c>.</summary>
    public string Name { get; init; }

    /// <summary>Identity of the driver's <c>iommu_ops</c>: type1 only reuses a domain with the same ops (spec §3.9 step 10).</summary>
    public string OpsName { get; init; }

    /// <summary>Supported IOPTE sizes (<c>pgsize_bitmap</c>).</summary>
    public ulong PgsizeBitmap { get; init; }

    /// <summary>Translatable IOVA range of a paging domain (<c>geometry.aperture_start/end</c>).</summary>
    public ByteRange Aperture { get; init; }

    /// <summary>Regions the driver reports for every device behind this IOMMU.</summary>
    public IReadOnlyList<ReservedRegion> ReservedRegions { get; init; }

    /// <summary>Interrupt remapping or an isolating MSI controller: MSI writes cannot be forged by a device.</summary>
    public bool IsolatedMsi { get; init; }

    /// <summary>Whether the domain op <c>enforce_cache_coherency</c> can succeed (snoop control).</summary>
    public bool CanEnforceCacheCoherency { get; init; }

    /// <summary>What the driver's map returns for an IOVA outside the aperture (EFAULT for VT-d, ERANGE for io-pgtable-arm).</summary>
    public Errno OutOfApertureError { get; init; }

    /// <summary>Whether the profile is a POWER TCE IOMMU: its groups are PEs with DMA windows
    /// (<see cref="TceTableGroup"/>), served by the sPAPR backend rather than paging domains.</summary>
    public bool IsTce => OpsName == SpaprTce.OpsName;

    /// <summary>The built-in profile called <paramref name="name"/>.</summary>
    public static bool TryGet(string name, out IommuHardwareProfile profile)
    {
        IommuHardwareProfile? p = name switch
        {
            "vt-d" or "intel" or "vtd" => VtD,
            "amd-vi" or "amd" => AmdVi,
            "smmu-v3" or "smmuv3" => SmmuV3,
            "smmu-v3-64k" => SmmuV3Granule64K,
            "spapr-tce" or "spapr" => SpaprTce,
            _ => null,
        };
        profile = p ?? VtD;
        return p is not null;
    }

    /// <summary>This profile with the scenario's overrides (<c>iommu_page_sizes</c>, <c>aperture</c>,
    /// extra <c>reserved_regions</c> added to the driver's own).</summary>
    public IommuHardwareProfile WithOverrides(
        ulong? pgsizeBitmap = null, ByteRange? aperture = null, IEnumerable<ReservedRegion>? extraReservedRegions = null,
        bool? isolatedMsi = null, bool? canEnforceCacheCoherency = null)
    {
        List<ReservedRegion> regions = [.. ReservedRegions];
        if (extraReservedRegions is not null)
        {
            regions.AddRange(extraReservedRegions);
        }
        regions.Sort((a, b) => a.Range.Start.CompareTo(b.Range.Start));
        return this with
        {
            PgsizeBitmap = pgsizeBitmap ?? PgsizeBitmap,
            Aperture = aperture ?? Aperture,
            ReservedRegions = regions,
            IsolatedMsi = isolatedMsi ?? IsolatedMsi,
            CanEnforceCacheCoherency = canEnforceCacheCoherency ?? CanEnforceCacheCoherency,
        };
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({PageSizeBitmap.Format(PgsizeBitmap)}, aperture {Aperture})";
}
