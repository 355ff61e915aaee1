using VfioLab.Iommu;

namespace VfioLab.Type1;

/// <summary>
/// One hardware page table of a type1 container (struct vfio_domain): the IOMMU domain, the groups
/// attached to it, and whether it enforces cache coherency. Every domain of a container holds the same
/// translations; a group whose IOMMU is compatible reuses a domain instead of getting a new one.
/// </summary>
/// <remarks>Protected by the container's lock. <see cref="Domain"/> never changes.</remarks>
internal sealed class VfioDomain(IommuDomain domain, bool enforceCacheCoherency)
{
    /// <summary>The IOMMU domain.</summary>
    public IommuDomain Domain { get; } = domain;

    /// <summary><c>enforce_cache_coherency</c>, decided when the domain was created.</summary>
    public bool EnforceCacheCoherency { get; } = enforceCacheCoherency;

    /// <summary>The attached groups (at least one while the domain is listed).</summary>
    public List<Type1Group> Groups { get; } = [];

    /// <inheritdoc />
    public override string ToString() => Domain.Name;
}
