using VfioLab.Addressing;
using VfioLab.Iommu;

namespace VfioLab.Type1;

/// <summary>One domain (struct vfio_domain) as copied into a <see cref="VfioIommuSnapshot"/>: the IOMMU
/// domain, its groups, its coherency bit, every run of its page table and its pending invalidations.</summary>
/// <param name="Domain">The IOMMU domain (for identity, page sizes and aperture; read nothing else from it).</param>
/// <param name="EnforceCacheCoherency">The domain's <c>enforce_cache_coherency</c> as type1 recorded it.</param>
/// <param name="Groups">Its groups.</param>
/// <param name="Runs">Every run of its page table, in IOVA order.</param>
/// <param name="PendingInvalidations">Physical ranges unmapped but not yet flushed from the IOTLB.</param>
internal sealed record VfioDomainSnapshot(
    IommuDomain Domain,
    bool EnforceCacheCoherency,
    IReadOnlyList<Type1GroupSnapshot> Groups,
    IReadOnlyList<MappedRun> Runs,
    IReadOnlyList<ByteRange> PendingInvalidations)
{
    /// <inheritdoc />
    public override string ToString() => Domain.Name;
}
