using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Iommu;
using VfioLab.Pci;

namespace VfioLab.Tests.Iommu;

public sealed class IommuGroupOwnershipTests
{
    private static (IommuGroup Group, IommuGroupMember Gpu, IommuGroupMember Audio) TwoFunctionGroup(DriverBinding audioBinding)
    {
        var topo = new PciTopology(new ByteRange(1UL << 40, (1UL << 41) - 1));
        PciFunction gpu = topo.AddFunction(PciAddress.Parse("0000:01:00.0"), 0x10de, 0x1eb8, []);
        PciFunction audio = topo.AddFunction(PciAddress.Parse("0000:01:00.1"), 0x10de, 0x10f8, []);
        var group = new IommuGroup(7, new IommuUnit(0, IommuHardwareProfile.VtD));
        var g = new IommuGroupMember(gpu, DriverBinding.Vfio);
        var a = new IommuGroupMember(audio, audioBinding);
        group.AddMember(g);
        group.AddMember(a);
        return (group, g, a);
    }

    [Fact]
    public void ClaimDmaOwner_MemberBoundToHostDriver_ReturnsEPERM()
    {
        (IommuGroup group, _, _) = TwoFunctionGroup(DriverBinding.Host);
        Assert.False(group.IsViable);
        Assert.Equal(Errno.EPERM, group.ClaimDmaOwner(new object()));
        Assert.Null(group.DmaOwner);
    }

    [Fact]
    public void ClaimDmaOwner_AllMembersVfioOrUnbound_Succeeds()
    {
        (IommuGroup group, _, _) = TwoFunctionGroup(DriverBinding.None);
        var owner = new object();
        Assert.True(group.IsViable);
        Assert.Equal(Errno.None, group.ClaimDmaOwner(owner));
        Assert.Same(owner, group.DmaOwner);
        Assert.Equal(Errno.EPERM, group.ClaimDmaOwner(new object()));
        group.ReleaseDmaOwner(owner);
        Assert.Null(group.DmaOwner);
    }

    [Fact]
    public void BindDriver_HostDriverOnOwnedGroup_ReturnsEBUSY()
    {
        (IommuGroup group, _, IommuGroupMember audio) = TwoFunctionGroup(DriverBinding.None);
        Assert.Equal(Errno.None, group.ClaimDmaOwner(this));
        Assert.Equal(Errno.EBUSY, group.BindDriver(audio, DriverBinding.Host));
        Assert.Equal(DriverBinding.None, audio.Binding);
    }

    [Fact]
    public void FindMember_ByPciName_ReturnsMember()
    {
        (IommuGroup group, IommuGroupMember gpu, _) = TwoFunctionGroup(DriverBinding.None);
        Assert.Same(gpu, group.FindMember("0000:01:00.0"));
        Assert.Null(group.FindMember("0000:02:00.0"));
    }
}

public sealed class IommuGroupAttachTests
{
    [Fact]
    public void Attach_DomainOfOwnUnit_SetsDomain()
    {
        var unit = new IommuUnit(0, IommuHardwareProfile.VtD);
        var group = new IommuGroup(1, unit);
        Assert.Equal(Errno.None, group.TryAllocateDomain(out IommuDomain? d));
        Assert.Equal(Errno.None, group.Attach(d!));
        Assert.Same(d, group.Domain);
        Assert.Equal([group], d!.AttachedGroups);
        Assert.Equal(Errno.EBUSY, group.Attach(d));
        group.Detach();
        Assert.Null(group.Domain);
        Assert.Empty(d.AttachedGroups);
    }

    [Fact]
    public void Attach_DomainOfOtherDriver_ReturnsEINVAL()
    {
        var group = new IommuGroup(1, new IommuUnit(0, IommuHardwareProfile.VtD));
        Assert.Equal(Errno.None, new IommuUnit(1, IommuHardwareProfile.SmmuV3).TryAllocateDomain(out IommuDomain? arm));
        Assert.Equal(Errno.EINVAL, group.Attach(arm!));
    }

    [Fact]
    public void Attach_CoherentDomainToNonCoherentUnit_ReturnsEINVAL()
    {
        var coherent = new IommuUnit(0, IommuHardwareProfile.VtD);
        var nonCoherent = new IommuUnit(1, IommuHardwareProfile.VtD.WithOverrides(canEnforceCacheCoherency: false));
        Assert.Equal(Errno.None, coherent.TryAllocateDomain(out IommuDomain? d));
        Assert.True(d!.TryEnforceCacheCoherency());
        Assert.Equal(Errno.EINVAL, new IommuGroup(2, nonCoherent).Attach(d));
        Assert.Equal(Errno.None, new IommuGroup(3, new IommuUnit(2, IommuHardwareProfile.VtD)).Attach(d));
    }

    [Fact]
    public void Attach_DomainOfUnitWithoutTheUnitsSuperpages_ReturnsEINVAL()
    {
        // Two VT-d units, one without 1 GiB super pages: neither takes the other's domain (intel's
        // paging_domain_compatible requires the same superpage capability), so type1 allocates one per unit.
        var full = new IommuUnit(0, IommuHardwareProfile.VtD);
        var noGiB = new IommuUnit(1, IommuHardwareProfile.VtD.WithOverrides(pgsizeBitmap: PageSizeBitmap.Size4K | PageSizeBitmap.Size2M));
        Assert.Equal(Errno.None, full.TryAllocateDomain(out IommuDomain? wide));
        Assert.Equal(Errno.None, noGiB.TryAllocateDomain(out IommuDomain? narrow));
        var onFull = new IommuGroup(2, full);
        var onNoGiB = new IommuGroup(3, noGiB);

        Assert.Equal(Errno.EINVAL, onFull.Attach(narrow!));
        Assert.Equal(Errno.EINVAL, onNoGiB.Attach(wide!));
        Assert.Null(onFull.Domain);
        Assert.Null(onNoGiB.Domain);
        Assert.Empty(narrow!.AttachedGroups);
        Assert.Empty(wide!.AttachedGroups);
        Assert.Equal(Errno.None, new IommuGroup(4, new IommuUnit(2, IommuHardwareProfile.VtD)).Attach(wide));
    }

    [Fact]
    public void Attach_InjectedFailure_ReturnsENOMEMAndStaysDetached()
    {
        var faults = new VfioLab.Diagnostics.FaultInjector();
        var group = new IommuGroup(1, new IommuUnit(0, IommuHardwareProfile.VtD, faults));
        Assert.Equal(Errno.None, group.TryAllocateDomain(out IommuDomain? d));
        faults.Arm(1, FaultSite.IommuAttachGroup);
        Assert.Equal(Errno.ENOMEM, group.Attach(d!));
        Assert.Null(group.Domain);
        Assert.Empty(d!.AttachedGroups);
    }

    [Fact]
    public void TryAllocateDomain_EmulatedGroup_ReturnsENODEV()
    {
        var group = new IommuGroup(9, null);
        group.AddMember(new IommuGroupMember(Guid.Parse("83b8f4f2-509f-382f-3c1e-e6bfe0fa1001")));
        Assert.True(group.IsEmulated);
        Assert.Empty(group.ReservedRegions);
        Assert.Equal(Errno.ENODEV, group.TryAllocateDomain(out _));
    }

    [Fact]
    public void NeedsMsiCookie_SmmuGroup_True()
    {
        Assert.True(new IommuGroup(1, new IommuUnit(0, IommuHardwareProfile.SmmuV3)).NeedsMsiCookie);
        Assert.False(new IommuGroup(2, new IommuUnit(1, IommuHardwareProfile.VtD)).NeedsMsiCookie);
    }
}
