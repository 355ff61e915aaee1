using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;

namespace VfioLab.Iommu;

/// <summary>
/// An IOMMU group: the smallest set of devices the IOMMU can isolate (<c>struct iommu_group</c>,
/// drivers/iommu/iommu.c). It has a number, member devices, the reserved regions of the IOMMU it sits
/// behind plus any extra, the isolated-MSI property, a DMA owner (<c>iommu_group_claim_dma_owner</c>)
/// and the paging domain it is attached to. An emulated group (mediated devices) sits behind no IOMMU.
/// </summary>
/// <remarks>
/// Lock: <c>_lock</c> (<c>group-&gt;mutex</c>). Order: group lock, then the domain's lock (attach
/// and detach register the group with the domain while holding it). It protects <c>_members</c>
/// (and each member's binding), <c>_owner</c> and <c>_domain</c>. Never change: <see cref="Id"/>, <see cref="TableGroup"/>,
/// <see cref="Unit"/>, <see cref="ReservedRegions"/>, <see cref="IsolatedMsi"/>.
/// </remarks>
internal sealed class IommuGroup
{
    private readonly object _lock = new();
    private readonly List<IommuGroupMember> _members = [];
    private object? _owner;
    private IommuDomain? _domain;

    /// <summary>
    /// Creates a group behind <paramref name="unit"/> (null: an emulated group). Its reserved regions
    /// are the unit's profile's plus <paramref name="extraReservedRegions"/>; isolated MSI is the
    /// profile's unless <paramref name="isolatedMsi"/> says otherwise (SCENARIOS.md <c>isolated_msi</c>).
    /// </summary>
    public IommuGroup(int id, IommuUnit? unit, IEnumerable<ReservedRegion>? extraReservedRegions = null, bool? isolatedMsi = null,
        FaultInjector? faults = null, TraceLog? trace = null)
    {
        Id = id;
        Unit = unit;
        Faults = unit?.Faults ?? faults ?? new FaultInjector();
        Trace = unit?.Trace ?? trace ?? new TraceLog();
        List<ReservedRegion> regions = unit is null ? [] : [.. unit.Profile.ReservedRegions];
        if (extraReservedRegions is not null)
        {
            regions.AddRange(extraReservedRegions);
        }
        regions.Sort((a, b) => a.Range.Start.CompareTo(b.Range.Start));
        ReservedRegions = regions;
        IsolatedMsi = isolatedMsi ?? unit?.Profile.IsolatedMsi ?? true;
        TableGroup = unit is not null && unit.Profile.IsTce ? new TceTableGroup(unit.Profile.Aperture, unit.Profile.PgsizeBitmap, Faults) : null;
    }

    /// <summary>The PE's DMA windows (<c>iommu_group_get_iommudata</c>: the iommu_table_group) for a group behind
    /// a sPAPR TCE IOMMU; null for every other IOMMU, whose groups translate through a paging domain.</summary>
    public TceTableGroup? TableGroup { get; }

    /// <summary>The group number (<c>/dev/vfio/&lt;Id&gt;</c>).</summary>
    public int Id { get; }

    /// <summary>The IOMMU instance the group's devices sit behind; null for an emulated group.</summary>
    public IommuUnit? Unit { get; }

    /// <summary>Whether this is an emulated (mdev) group with no IOMMU.</summary>
    public bool IsEmulated => Unit is null;

    /// <summary>Failure injection shared with the host.</summary>
    public FaultInjector Faults { get; }

    /// <summary>Event log shared with the host.</summary>
    public TraceLog Trace { get; }

    /// <summary>Reserved regions (<c>iommu_get_group_resv_regions</c>), sorted by start.</summary>
    public IReadOnlyList<ReservedRegion> ReservedRegions { get; }

    /// <summary>Whether MSI writes are isolated (interrupt remapping); without it type1 refuses the
    /// attach with EPERM unless <c>allow_unsafe_interrupts</c>.</summary>
    public bool IsolatedMsi { get; }

    /// <summary>Whether a software-managed MSI window exists (IOMMU_RESV_SW_MSI).</summary>
    public bool HasSwMsi => ReservedRegions.Any(r => r.Type == ReservedRegionType.SwMsi);

    /// <summary>Whether a hardware MSI window exists (IOMMU_RESV_MSI).</summary>
    public bool HasHardwareMsi => ReservedRegions.Any(r => r.Type == ReservedRegionType.Msi);

    /// <summary>Whether type1 must give a new domain an MSI cookie (SW_MSI and no hardware MSI, spec §2.8).</summary>
    public bool NeedsMsiCookie => HasSwMsi && !HasHardwareMsi;

    /// <summary>The members, in the order added.</summary>
    public IReadOnlyList<IommuGroupMember> Members
    {
        get { lock (_lock) { return [.. _members]; } }
    }

    /// <summary>The paging domain the group is attached to, or null (default/blocking domain).</summary>
    public IommuDomain? Domain
    {
        get { lock (_lock) { return _domain; } }
    }

    /// <summary>The current DMA owner token, or null.</summary>
    public object? DmaOwner
    {
        get { lock (_lock) { return _owner; } }
    }

    /// <summary>Whether VFIO may use the group: no member is bound to a kernel (host) driver
    /// (<c>vfio_group_viable</c>).</summary>
    public bool IsViable
    {
        get
        {
            lock (_lock)
            {
                foreach (IommuGroupMember m in _members)
                {
                    if (m.Binding == DriverBinding.Host)
                    {
                        return false;
                    }
                }
                return true;
            }
        }
    }

    /// <summary>Adds a device to the group (host construction, hotplug).</summary>
    public void AddMember(IommuGroupMember member)
    {
        lock (_lock)
        {
            _members.Add(member);
        }
    }

    /// <summary>Removes a device (hot unplug). False when it was not a member.</summary>
    public bool RemoveMember(IommuGroupMember member)
    {
        lock (_lock)
        {
            return _members.Remove(member);
        }
    }

    /// <summary>The member named <paramref name="name"/> (PCI address or mdev UUID).</summary>
    public IommuGroupMember? FindMember(string name)
    {
        lock (_lock)
        {
            foreach (IommuGroupMember m in _members)
            {
                if (m.Name == name)
                {
                    return m;
                }
            }
            return null;
        }
    }

    /// <summary>
    /// Binds <paramref name="member"/> to a driver kind. Binding a kernel driver while the group has a
    /// DMA owner fails, as <c>iommu_device_use_default_domain</c> does when the group is claimed.
    /// </summary>
    /// <returns><see cref="Errno.None"/>; <see cref="Errno.EBUSY"/> for a host driver on an owned group;
    /// <see cref="Errno.ENODEV"/> when the device is not a member.</returns>
    public Errno BindDriver(IommuGroupMember member, DriverBinding binding)
    {
        lock (_lock)
        {
            if (!_members.Contains(member))
            {
                return Refusals.Refuse(Errno.ENODEV, "iommu_device_use_default_domain", "{4} is not a member of group {0}", (ulong)Id, text: member.Name);
            }
            if (binding == DriverBinding.Host && _owner is not null)
            {
                return Refusals.Refuse(Errno.EBUSY, "iommu_device_use_default_domain", "group {0} is claimed for user DMA; {4} cannot bind a kernel driver", (ulong)Id,
                    text: member.Name);
            }
            member.Binding = binding;
            return Errno.None;
        }
    }

    /// <summary>
    /// <c>iommu_group_claim_dma_owner</c>: makes <paramref name="owner"/> the group's exclusive DMA user.
    /// </summary>
    /// <returns><see cref="Errno.None"/>; <see cref="Errno.EPERM"/> when a member is bound to a kernel
    /// driver (its use of the default domain counts as an owner: <c>owner_cnt</c> is non-zero) or the
    /// group already has an owner.</returns>
    public Errno ClaimDmaOwner(object owner)
    {
        lock (_lock)
        {
            if (_owner is not null)
            {
                return Refusals.Refuse(Errno.EPERM, "iommu_group_claim_dma_owner", "group {0} already has a DMA owner", (ulong)Id);
            }
            foreach (IommuGroupMember m in _members)
            {
                if (m.Binding == DriverBinding.Host)
                {
                    return Refusals.Refuse(Errno.EPERM, "iommu_group_claim_dma_owner", "group {0} is not viable: {4} is bound to a kernel driver", (ulong)Id, text: m.Name);
                }
            }
            _owner = owner;
        }
        Trace.Emit(TraceKind.IommuGroupClaim, 0, TraceLog.F("group", Id));
        return Errno.None;
    }

    /// <summary><c>iommu_group_release_dma_owner</c>. Never fails; releasing by a non-owner is a model bug.</summary>
    public void ReleaseDmaOwner(object owner)
    {
        lock (_lock)
        {
            System.Diagnostics.Debug.Assert(ReferenceEquals(_owner, owner), "release by a non-owner");
            System.Diagnostics.Debug.Assert(_domain is null, "DMA owner released while attached");
            _owner = null;
        }
        Trace.Emit(TraceKind.IommuGroupRelease, 0, TraceLog.F("group", Id));
    }

    /// <summary>A new paging domain on the group's IOMMU (<c>iommu_paging_domain_alloc</c> for its first device).</summary>
    /// <returns><see cref="Errno.None"/>; <see cref="Errno.ENODEV"/> for an emulated group;
    /// <see cref="Errno.ENOMEM"/> when the fault site <c>iommu_domain_alloc</c> fires.</returns>
    public Errno TryAllocateDomain(out IommuDomain? domain)
    {
        domain = null;
        return Unit is null
            ? Refusals.Refuse(Errno.ENODEV, "iommu_paging_domain_alloc", "group {0} is emulated: it has no IOMMU", (ulong)Id)
            : Unit.TryAllocateDomain(out domain);
    }

    /// <summary>
    /// <c>iommu_attach_group</c>: the group's devices translate through <paramref name="domain"/>.
    /// A domain of another unit is accepted when the drivers match and the domain is compatible with
    /// this unit (as intel's paging_domain_compatible checks: coherency enforcement, the same page sizes, width).
    /// </summary>
    /// <returns><see cref="Errno.None"/>; <see cref="Errno.ENODEV"/> for an emulated group;
    /// <see cref="Errno.EBUSY"/> when already attached to a domain; <see cref="Errno.EINVAL"/> for a
    /// freed domain, different ops, or an incompatible domain; <see cref="Errno.ENOMEM"/> when the fault
    /// site <c>iommu_attach_group</c> fires.</returns>
    public Errno Attach(IommuDomain domain)
    {
        lock (_lock)
        {
            if (Unit is null)
            {
                return Refusals.Refuse(Errno.ENODEV, "iommu_attach_group", "group {0} is emulated: it has no IOMMU", (ulong)Id);
            }
            if (_domain is not null)
            {
                return Refusals.Refuse(Errno.EBUSY, "iommu_attach_group", "group {0} is already attached to a domain", (ulong)Id);
            }
            if (domain.IsFreed || domain.OpsName != Unit.Profile.OpsName)
            {
                return Refusals.Refuse(Errno.EINVAL, "iommu_attach_group", domain.IsFreed
                    ? "the domain was freed"
                    : "the domain belongs to another IOMMU driver ({4})", text: domain.OpsName);
            }
            if (!ReferenceEquals(domain.Unit, Unit))
            {
                bool compatible =
                    (!domain.EnforceCacheCoherency || Unit.Profile.CanEnforceCacheCoherency) &&
                    // paging_domain_compatible compares the superpage capability for equality, not inclusion:
                    // a 2M-only domain is refused by a 1G-capable unit as much as the other way round.
                    domain.PgsizeBitmap == Unit.Profile.PgsizeBitmap &&
                    Unit.Profile.Aperture.Contains(domain.Aperture);
                if (!compatible)
                {
                    return Refusals.Refuse(Errno.EINVAL, "paging_domain_compatible", "the domain's coherency, page sizes 0x{0:x} or aperture do not suit group {1}'s IOMMU",
                        domain.PgsizeBitmap, (ulong)Id);
                }
            }
            if (Faults.ShouldFail(FaultSite.IommuAttachGroup))
            {
                return Refusals.Refuse(Errno.ENOMEM, "iommu_attach_group", "attaching group {0} failed (injected)", (ulong)Id);
            }
            _domain = domain;
            domain.AddGroup(this);
        }
        Trace.Emit(TraceKind.IommuAttachGroup, 0, TraceLog.F("group", Id), TraceLog.F("domain", domain.Name));
        return Errno.None;
    }

    /// <summary><c>iommu_detach_group</c>: back to the blocking (owned) or default domain. Never fails;
    /// a no-op when not attached.</summary>
    public void Detach()
    {
        IommuDomain? old;
        lock (_lock)
        {
            old = _domain;
            if (old is null)
            {
                return;
            }
            old.RemoveGroup(this);
            _domain = null;
        }
        Trace.Emit(TraceKind.IommuDetachGroup, 0, TraceLog.F("group", Id), TraceLog.F("domain", old.Name));
    }

    /// <summary>Whether any non-relaxable reserved region overlaps <paramref name="iova"/>.</summary>
    public bool OverlapsReservedHole(ByteRange iova)
    {
        foreach (ReservedRegion r in ReservedRegions)
        {
            if (r.IsHoleForVfio && r.Range.Overlaps(iova))
            {
                return true;
            }
        }
        return false;
    }

    /// <inheritdoc />
    public override string ToString() => $"group {Id}{(IsEmulated ? " (emulated)" : $" behind {Unit}")}";
}
