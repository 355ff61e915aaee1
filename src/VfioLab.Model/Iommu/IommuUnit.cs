using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Iommu;

/// <summary>
/// One IOMMU hardware instance on the host (a DMAR unit, an AMD IOMMU, an SMMU): the
/// <c>struct iommu_device</c> a device sits behind, with its (possibly overridden) profile. Paging
/// domains are allocated per unit (<c>iommu_paging_domain_alloc(dev)</c>).
/// </summary>
/// <remarks>Immutable after construction except the domain id counter (Interlocked).</remarks>
internal sealed class IommuUnit
{
    private int _nextDomainId;

    /// <summary>Creates a unit; <paramref name="faults"/> and <paramref name="trace"/> are the host's.</summary>
    public IommuUnit(int id, IommuHardwareProfile profile, FaultInjector? faults = null, TraceLog? trace = null)
    {
        Id = id;
        Profile = profile;
        Faults = faults ?? new FaultInjector();
        Trace = trace ?? new TraceLog();
    }

    /// <summary>Host-unique unit number.</summary>
    public int Id { get; }

    /// <summary>The hardware kind and its overrides.</summary>
    public IommuHardwareProfile Profile { get; }

    /// <summary>Failure injection shared with the host.</summary>
    public FaultInjector Faults { get; }

    /// <summary>Event log shared with the host.</summary>
    public TraceLog Trace { get; }

    /// <summary>A name for messages: <c>vt-d#0</c>.</summary>
    public string Name => $"{Profile.Name}#{Id}";

    /// <summary>
    /// Allocates an empty paging domain (<c>iommu_paging_domain_alloc</c>).
    /// </summary>
    /// <returns><see cref="Errno.None"/>, or <see cref="Errno.ENOMEM"/> when the injected fault site
    /// <c>iommu_domain_alloc</c> fires.</returns>
    public Errno TryAllocateDomain(out IommuDomain? domain)
    {
        domain = null;
        if (Faults.ShouldFail(FaultSite.IommuDomainAlloc))
        {
            return Refusals.Refuse(Errno.ENOMEM, "iommu_paging_domain_alloc", "allocating a domain failed (injected)");
        }
        domain = new IommuDomain(this, Interlocked.Increment(ref _nextDomainId));
        Trace.Emit(TraceKind.IommuDomainAlloc, 0, TraceLog.F("unit", Name), TraceLog.F("domain", domain.Name));
        return Errno.None;
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}
