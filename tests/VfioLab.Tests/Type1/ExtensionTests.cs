using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Tests.Type1;

/// <summary>
/// VFIO_CHECK_EXTENSION answered by type1 without state (before SET_IOMMU) and with it, and VFIO_SET_IOMMU
/// choosing v1 or v2 state (spec §1.2, vfio_iommu_type1_check_extension and vfio_iommu_type1_open).
/// </summary>
public sealed class ExtensionTests
{
    private static readonly IommuHardwareProfile NonCoherent = IommuHardwareProfile.VtD.WithOverrides(canEnforceCacheCoherency: false);

    [Theory]
    [InlineData(VfioExtension.Type1Iommu, 1)]
    [InlineData(VfioExtension.Type1v2Iommu, 1)]
    [InlineData(VfioExtension.UnmapAll, 1)]
    [InlineData(VfioExtension.UpdateVaddr, 0)]
    [InlineData(VfioExtension.DmaCcIommu, 0)]
    [InlineData(VfioExtension.Type1NestingIommu, 0)]
    [InlineData(VfioExtension.SpaprTceIommu, 0)]
    [InlineData(VfioExtension.SpaprTceV2Iommu, 0)]
    [InlineData(VfioExtension.Eeh, 0)]
    [InlineData(VfioExtension.NoiommuIommu, 0)]
    public void CheckExtension_GroupSetBeforeSetIommu_AnswersWithoutState(uint extension, long expected)
    {
        var t = new Type1TestHost();
        int c = t.OpenContainer();
        int g = t.OpenGroup(Type1TestHost.GpuGroup);
        Assert.Equal(0, t.SetContainer(g, c));

        Assert.Equal(expected, CheckExtension(t, c, extension));
    }

    [Theory]
    [InlineData(VfioExtension.Type1Iommu, 1)]
    [InlineData(VfioExtension.Type1v2Iommu, 1)]
    [InlineData(VfioExtension.UnmapAll, 1)]
    [InlineData(VfioExtension.UpdateVaddr, 0)]
    [InlineData(VfioExtension.DmaCcIommu, 0)]
    [InlineData(VfioExtension.Type1NestingIommu, 0)]
    public void CheckExtension_EmptyContainer_PollsType1WithoutState(uint extension, long expected)
    {
        var t = new Type1TestHost();
        int c = t.OpenContainer();

        Assert.Equal(expected, CheckExtension(t, c, extension));
    }

    [Theory]
    [InlineData(VfioExtension.Type1Iommu, 1)]
    [InlineData(VfioExtension.Type1v2Iommu, 1)]
    [InlineData(VfioExtension.UnmapAll, 1)]
    [InlineData(VfioExtension.UpdateVaddr, 1)]
    [InlineData(VfioExtension.DmaCcIommu, 1)]
    [InlineData(VfioExtension.Type1NestingIommu, 0)]
    [InlineData(VfioExtension.SpaprTceIommu, 0)]
    [InlineData(VfioExtension.SpaprTceV2Iommu, 0)]
    [InlineData(VfioExtension.Eeh, 0)]
    [InlineData(VfioExtension.NoiommuIommu, 0)]
    public void CheckExtension_AfterSetIommu_AnswersWithState(uint extension, long expected)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();

        Assert.Equal(expected, CheckExtension(t, c, extension));
    }

    [Fact]
    public void CheckExtension_UpdateVaddrWithMdevGroupAttached_ReturnsZeroUntilItLeaves()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        int mdev = t.AddGroup(c, Type1TestHost.MdevGroup);

        Assert.Equal(0, CheckExtension(t, c, VfioExtension.UpdateVaddr));
        Assert.Equal(0, t.UnsetContainer(mdev));
        Assert.Equal(1, CheckExtension(t, c, VfioExtension.UpdateVaddr));
    }

    [Fact]
    public void CheckExtension_UpdateVaddrMdevOnlyContainer_ReturnsZero()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);

        Assert.Equal(0, CheckExtension(t, c, VfioExtension.UpdateVaddr));
        Assert.Equal(1, CheckExtension(t, c, VfioExtension.Type1v2Iommu));
    }

    [Fact]
    public void CheckExtension_DmaCcIommuWithoutDomain_ReturnsOneVacuously()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(Type1TestHost.MdevGroup);

        Assert.Equal(1, CheckExtension(t, c, VfioExtension.DmaCcIommu));
    }

    [Fact]
    public void CheckExtension_DmaCcIommuOneDomainNotCoherent_ReturnsZeroUntilItLeaves()
    {
        var t = new Type1TestHost(otherIommu: NonCoherent);
        (int c, _) = t.Container();
        Assert.Equal(1, CheckExtension(t, c, VfioExtension.DmaCcIommu));
        int other = t.AddGroup(c, Type1TestHost.OtherIommuGroup);

        Assert.NotSame(t.DomainOf(Type1TestHost.GpuGroup), t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Equal(0, CheckExtension(t, c, VfioExtension.DmaCcIommu));
        Assert.Equal(0, t.UnsetContainer(other));
        Assert.Equal(1, CheckExtension(t, c, VfioExtension.DmaCcIommu));
    }

    [Fact]
    public void CheckExtension_DmaCcIommuOnlyDomainNotCoherent_ReturnsZero()
    {
        var t = new Type1TestHost(otherIommu: NonCoherent);
        (int c, _) = t.Container(Type1TestHost.OtherIommuGroup);

        Assert.Equal(0, CheckExtension(t, c, VfioExtension.DmaCcIommu));
        Assert.False(t.DomainOf(Type1TestHost.OtherIommuGroup)!.EnforceCacheCoherency);
    }

    [Fact]
    public void CheckExtension_LastGroupLeft_AnswersWithoutStateAgain()
    {
        var t = new Type1TestHost();
        (int c, int g) = t.Container();
        Assert.Equal(1, CheckExtension(t, c, VfioExtension.UpdateVaddr));

        Assert.Equal(0, t.UnsetContainer(g));

        Assert.Equal(0, CheckExtension(t, c, VfioExtension.UpdateVaddr));
        Assert.Equal(0, CheckExtension(t, c, VfioExtension.DmaCcIommu));
        Assert.Equal(1, CheckExtension(t, c, VfioExtension.Type1v2Iommu));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(VfioExtension.SpaprTceIommu)]
    [InlineData(VfioExtension.DmaCcIommu)]
    [InlineData(VfioExtension.Eeh)]
    [InlineData(VfioExtension.Type1NestingIommu)]
    [InlineData(VfioExtension.SpaprTceV2Iommu)]
    [InlineData(VfioExtension.NoiommuIommu)]
    [InlineData(VfioExtension.UnmapAll)]
    [InlineData(99u)]
    public void SetIommu_TypeNoBackendOpens_ReturnsENODEVAndLeavesNoState(uint type)
    {
        // UNMAP_ALL passes type1's CHECK_EXTENSION gate (it answers 1) and then its open refuses it with
        // EINVAL; every other value is claimed by no backend at all.
        var t = new Type1TestHost();
        int c = t.OpenContainer();
        int g = t.OpenGroup(Type1TestHost.GpuGroup);
        Assert.Equal(0, t.SetContainer(g, c));

        long ret = t.SetIommu(c, type);

        Assert.Equal((type == VfioExtension.UnmapAll ? Errno.EINVAL : Errno.ENODEV).AsReturn(), ret);
        Assert.Null(Container(t, c).Iommu);
        Assert.Null(t.DomainOf(Type1TestHost.GpuGroup));
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0, t.MmapAnonymous(Type1TestHost.MiB), Type1TestHost.MiB));
        Assert.Equal(0, t.SetIommu(c));
        Assert.NotNull(t.DomainOf(Type1TestHost.GpuGroup));
    }

    [Fact]
    public void SetIommu_NoGroup_ReturnsEINVAL()
    {
        var t = new Type1TestHost();
        int c = t.OpenContainer();

        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetIommu(c));

        Assert.Null(Container(t, c).Iommu);
    }

    [Fact]
    public void SetIommu_BackendAlreadySet_ReturnsEINVALAndKeepsState()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        VfioIommu before = t.Backend(c);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetIommu(c, VfioExtension.Type1Iommu));

        Assert.Same(before, t.Backend(c));
        Assert.True(before.V2);
    }

    [Theory]
    [InlineData(VfioExtension.Type1Iommu, false)]
    [InlineData(VfioExtension.Type1v2Iommu, true)]
    public void SetIommu_Type1Version_OpensStateOfThatVersion(uint type, bool v2)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(type: type);

        VfioIommu backend = t.Backend(c);

        Assert.Equal(v2, backend.V2);
        Assert.Equal(65535UL, backend.DmaAvail);
        Assert.Equal(0UL, backend.MappingCount);
        Assert.Equal(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G, backend.PgsizeBitmap);
    }

    [Theory]
    [InlineData(VfioExtension.Type1Iommu, -(long)Errno.EACCES)]
    [InlineData(VfioExtension.Type1v2Iommu, 0L)]
    public void DirtyPages_Start_OnlyV2StateTracks(uint type, long expected)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(type: type);

        Assert.Equal(expected, t.Dirty(c, DirtyPagesFlags.Start));
    }

    [Fact]
    public void UnmapDma_V1StateRangeInsideMapping_RemovesWholeMapping()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(type: VfioExtension.Type1Iommu);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(2 * Type1TestHost.MiB), 2 * Type1TestHost.MiB));

        (long ret, ulong size) = t.Unmap(c, 0, 0x1000);

        Assert.Equal(0, ret);
        Assert.Equal(2 * Type1TestHost.MiB, size);
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(0UL, t.TotalPins);
    }

    [Fact]
    public void UnmapDma_V2StateRangeInsideMapping_ReturnsEINVALAndKeepsMapping()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container(type: VfioExtension.Type1v2Iommu);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(2 * Type1TestHost.MiB), 2 * Type1TestHost.MiB));

        (long ret, _) = t.Unmap(c, 0, 0x1000);

        Assert.Equal(Errno.EINVAL.AsReturn(), ret);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(512UL, t.TotalPins);
    }

    private static long CheckExtension(Type1TestHost t, int containerFd, uint extension) =>
        t.Sys.Ioctl(containerFd, VfioIoctl.CheckExtension, extension);

    private static VfioContainer Container(Type1TestHost t, int containerFd)
    {
        Assert.True(t.Process.Fds.TryGet(containerFd, out OpenFile file));
        file.Put();
        return ((VfioContainerFile)file.Operations).Container;
    }
}
