using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Tests.Type1;

/// <summary>
/// Group detach, re-accounting and container release (spec §3.14, §3.10, §2.9; invariants 3, 12, 15): the
/// last group takes every mapping, pin, charge and domain with it; a domain that loses its last group is
/// freed while the others keep the mappings; the last IOMMU group leaving an mdev behind re-accounts; closing
/// fds in any order and process exit clean up.
/// </summary>
public sealed class DetachTests
{
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong PageMask = ~0xfffUL;
    private const ulong VtDSizes = PageSizeBitmap.Size4K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G;

    private static readonly IommuHardwareProfile Other4K2M = IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M);

    [Fact]
    public void UnsetContainer_LastGroup_ReleasesMappingsPinsChargesAndDomain()
    {
        var t = new Type1TestHost();
        (int c, int g) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        Assert.Equal(0, t.Map(c, 0x40000000, t.MmapAnonymous(2 * MiB), 2 * MiB));
        IommuDomain domain = t.DomainOf(Type1TestHost.GpuGroup)!;
        VfioContainer container = ContainerOf(t, c);

        Assert.Equal(0, t.UnsetContainer(g));

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.PinnedFrames);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.True(domain.IsFreed);
        Assert.Equal(0UL, domain.TotalEntries);
        Assert.Null(t.DomainOf(Type1TestHost.GpuGroup));
        Assert.Null(t.IommuGroup(Type1TestHost.GpuGroup).DmaOwner);
        Assert.Null(container.Iommu);
        Assert.Null(container.Driver);
        Assert.Empty(container.Groups);
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0, t.MmapAnonymous(MiB), MiB));
        // The group comes back to a container without backend: SET_IOMMU opens fresh, empty state.
        Assert.Equal(0, t.SetContainer(g, c));
        Assert.Equal(0, t.SetIommu(c));
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(65535UL, t.Backend(c).DmaAvail);
    }

    [Theory]
    [InlineData(Type1TestHost.OtherIommuGroup)]
    [InlineData(Type1TestHost.GpuGroup)]
    public void UnsetContainer_OneOfTwoDomains_OtherDomainKeepsMappings(int leaving)
    {
        var t = new Type1TestHost(otherIommu: Other4K2M);
        (int c, int gpu) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        Assert.Equal(0, t.Map(c, 0x40000000, t.MmapAnonymous(2 * MiB), 2 * MiB));
        int other = t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        int staying = leaving == Type1TestHost.GpuGroup ? Type1TestHost.OtherIommuGroup : Type1TestHost.GpuGroup;
        IommuDomain gone = t.DomainOf(leaving)!;
        IommuDomain kept = t.DomainOf(staying)!;
        ulong keptEntries = kept.TotalEntries;

        Assert.Equal(0, t.UnsetContainer(leaving == Type1TestHost.GpuGroup ? gpu : other));

        Assert.True(gone.IsFreed);
        Assert.False(kept.IsFreed);
        Assert.Equal(keptEntries, kept.TotalEntries);
        Assert.True(kept.Translate(new Iova(0x40000000), write: true).Ok);
        Assert.Equal(1536UL, t.TotalPins);
        Assert.Equal(1536UL, t.LockedVmPages);
        Assert.Equal(2UL, t.Backend(c).MappingCount);
        Assert.Equal(leaving == Type1TestHost.GpuGroup ? PageSizeBitmap.Size4K | PageSizeBitmap.Size2M : VtDSizes, t.Backend(c).PgsizeBitmap);
        // The remaining domain is the one unmap walks: it finds and releases every pin.
        Assert.Equal((0L, 6 * MiB), t.Unmap(c, 0, 0, DmaUnmapFlags.All));
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, kept.TotalEntries);
    }

    [Fact]
    public void UnsetContainer_GroupSharingDomain_DomainStaysWithMappings()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        int nic = t.AddGroup(c, Type1TestHost.NicGroup);
        IommuDomain domain = t.DomainOf(Type1TestHost.GpuGroup)!;
        ulong entries = domain.TotalEntries;

        Assert.Equal(0, t.UnsetContainer(nic));

        Assert.False(domain.IsFreed);
        Assert.Same(domain, t.DomainOf(Type1TestHost.GpuGroup));
        Assert.Null(t.DomainOf(Type1TestHost.NicGroup));
        Assert.Single(domain.AttachedGroups);
        Assert.Equal(entries, domain.TotalEntries);
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(1024UL, t.LockedVmPages);
    }

    [Fact]
    public void UnsetContainer_LastIommuGroupWithMdevLeft_ReaccountsToExternalPins()
    {
        var t = new Type1TestHost();
        (int c, int gpu) = t.Container();
        t.AddGroup(c, Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        Assert.Equal(0, t.Map(c, 0x40000000, t.MmapAnonymous(2 * MiB), 2 * MiB));
        IommuDomain domain = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(1536UL, t.LockedVmPages);

        Assert.Equal(0, t.UnsetContainer(gpu));

        // No external pins: each mapping is charged for nothing, pins nothing, and stays.
        Assert.Equal(2UL, t.Backend(c).MappingCount);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.True(domain.IsFreed);
        Assert.Equal(PageMask, t.Backend(c).PgsizeBitmap);
        Assert.Equal(65533UL, t.Backend(c).DmaAvail);
        // The mappings are intact: a GPU coming back gets them replayed, pinned and charged again.
        Assert.Equal(0, t.SetContainer(gpu, c));
        Assert.Equal(1536UL, t.TotalPins);
        Assert.Equal(1536UL, t.LockedVmPages);
        Assert.True(t.DomainOf(Type1TestHost.GpuGroup)!.Translate(new Iova(0x40000000), write: true).Ok);
    }

    [Fact]
    public void UnsetContainer_IommuGroupLeavesWhileTracking_MarksEveryPageDirty()
    {
        // The group was outside pinned-page scope: leaving while tracking marks every page dirty so nothing
        // it may have written is lost (vfio_iommu_populate_bitmap_full). Afterwards only the mdev is left,
        // so a report shows the bitmaps as they are, and the next one shows them reset.
        var t = new Type1TestHost();
        (int c, int gpu) = t.Container();
        t.AddGroup(c, Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(MiB), MiB));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));

        Assert.Equal(0, t.UnsetContainer(gpu));

        Assert.Equal([ulong.MaxValue, ulong.MaxValue, ulong.MaxValue, ulong.MaxValue], GetBitmap(t, c, 0, MiB));
        Assert.Equal([0UL, 0UL, 0UL, 0UL], GetBitmap(t, c, 0, MiB));
    }

    [Fact]
    public void UnsetContainer_IommuGroupLeavesWithAnotherDomainAndMdevLeft_NoReaccounting()
    {
        var t = new Type1TestHost(otherIommu: Other4K2M);
        (int c, int gpu) = t.Container();
        int other = t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        t.AddGroup(c, Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));

        Assert.Equal(0, t.UnsetContainer(gpu));

        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(1024UL, t.LockedVmPages);

        Assert.Equal(0, t.UnsetContainer(other));

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
    }

    [Fact]
    public void UnsetContainer_MdevGroupLeavesIommuGroupLeft_ChangesNothing()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        int mdev = t.AddGroup(c, Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        IommuDomain domain = t.DomainOf(Type1TestHost.GpuGroup)!;
        ulong entries = domain.TotalEntries;

        Assert.Equal(0, t.UnsetContainer(mdev));

        Assert.Equal(entries, domain.TotalEntries);
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(1024UL, t.LockedVmPages);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(1, t.Sys.Ioctl(c, VfioIoctl.CheckExtension, VfioExtension.UpdateVaddr));
    }

    [Fact]
    public void UnsetContainer_LastGroupIsMdev_RemovesMappings()
    {
        var t = new Type1TestHost();
        (int c, int mdev) = t.Container(Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        VfioContainer container = ContainerOf(t, c);

        Assert.Equal(0, t.UnsetContainer(mdev));

        Assert.Null(container.Iommu);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
    }

    [Theory]
    [InlineData("container gpu other mdev")]
    [InlineData("gpu other mdev container")]
    [InlineData("mdev other gpu container")]
    [InlineData("gpu container mdev other")]
    [InlineData("other mdev container gpu")]
    public void Close_ContainerAndGroupFdsInOrder_CleansUpAtLastGroup(string order)
    {
        var t = new Type1TestHost(otherIommu: Other4K2M);
        (int c, int gpu) = t.Container();
        int other = t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        int mdev = t.AddGroup(c, Type1TestHost.MdevGroup);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        VfioContainer container = ContainerOf(t, c);
        IommuDomain gpuDomain = t.DomainOf(Type1TestHost.GpuGroup)!;
        IommuDomain otherDomain = t.DomainOf(Type1TestHost.OtherIommuGroup)!;
        var fds = new Dictionary<string, int> { ["container"] = c, ["gpu"] = gpu, ["other"] = other, ["mdev"] = mdev };
        var groupsLeft = new HashSet<string> { "gpu", "other", "mdev" };

        foreach (string name in order.Split(' '))
        {
            Assert.Equal(0, t.Sys.Close(fds[name]));
            groupsLeft.Remove(name);
            bool iommuGroupLeft = groupsLeft.Contains("gpu") || groupsLeft.Contains("other");
            Assert.Equal(iommuGroupLeft ? 1024UL : 0UL, t.TotalPins);
            Assert.Equal(iommuGroupLeft ? 1024UL : 0UL, t.LockedVmPages);
            Assert.Equal(groupsLeft.Count > 0, container.Iommu is not null);
        }

        Assert.True(gpuDomain.IsFreed);
        Assert.True(otherDomain.IsFreed);
        Assert.Empty(t.Host.Vfio.Containers);
        foreach (int n in new[] { Type1TestHost.GpuGroup, Type1TestHost.OtherIommuGroup, Type1TestHost.MdevGroup })
        {
            Assert.Null(t.Host.Vfio.FindGroup(n)!.Container);
            Assert.Null(t.IommuGroup(n).DmaOwner);
        }
    }

    [Fact]
    public void Exit_ProcessWithMappings_UnpinsAndLeavesDeadMmCharged()
    {
        // do_exit drops the mm (exit_mm) before closing files (exit_files): the release's un-charge runs
        // async against an mm without users and gets ESRCH (§2.9), so the dead mm keeps its locked_vm.
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        IommuDomain domain = t.DomainOf(Type1TestHost.GpuGroup)!;

        t.Process.Exit();

        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.PinnedFrames);
        Assert.True(domain.IsFreed);
        Assert.Empty(t.Host.Vfio.Containers);
        Assert.Null(t.Host.Vfio.FindGroup(Type1TestHost.GpuGroup)!.Container);
        Assert.Null(t.IommuGroup(Type1TestHost.GpuGroup).DmaOwner);
        Assert.False(t.Process.LastMm.IsAlive);
        Assert.Equal(1024UL, t.Process.LastMm.LockedVm);
    }

    [Fact]
    public void Exit_ForkedChildHoldsFds_CleanupWaitsForLastHolder()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB, populate: true), 4 * MiB));
        IommuDomain domain = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));

        t.Process.Exit();

        // The child's fd table still references the container and the group.
        Assert.False(domain.IsFreed);
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(1024UL, t.Process.LastMm.LockedVm);

        child!.Exit();

        Assert.True(domain.IsFreed);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Empty(t.Host.Vfio.Containers);
        // The mapping's owner mm was already dead at release: its charge stays; the child was never charged.
        Assert.Equal(1024UL, t.Process.LastMm.LockedVm);
        Assert.Equal(0UL, child.LastMm.LockedVm);
    }

    [Fact]
    public void Close_ContainerFdWhileGroupHoldsIt_KeepsBackendUntilGroupCloses()
    {
        var t = new Type1TestHost();
        (int c, int g) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        VfioContainer container = ContainerOf(t, c);

        Assert.Equal(0, t.Sys.Close(c));

        Assert.NotNull(container.Iommu);
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(1UL, ((VfioIommu)container.Iommu!).MappingCount);

        Assert.Equal(0, t.Sys.Close(g));

        Assert.Null(container.Iommu);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Empty(t.Host.Vfio.Containers);
    }

    // VFIO_IOMMU_DIRTY_PAGES GET_BITMAP of [iova, iova + size) at 4 KiB into fresh zeroed user memory.
    private static ulong[] GetBitmap(Type1TestHost t, int containerFd, ulong iova, ulong size)
    {
        int words = (int)((size >> 12) + 63) / 64;
        ulong data = t.MmapAnonymous(0x1000);
        Span<byte> buf = stackalloc byte[VfioIommuType1DirtyBitmap.MinSizeWithGetBitmap];
        new VfioIommuType1DirtyBitmap { Argsz = (uint)buf.Length, Flags = DirtyPagesFlags.GetBitmap }.Write(buf);
        new VfioIommuType1DirtyBitmapGet
        {
            Iova = iova,
            Size = size,
            Bitmap = new VfioBitmap { Pgsize = 0x1000, Size = (ulong)words * 8, Data = data },
        }.Write(buf[VfioIommuType1DirtyBitmap.Offsets.Data..]);
        Assert.Equal(0, t.Sys.Ioctl(containerFd, VfioIoctl.IommuDirtyPages, buf));
        return t.ReadWords(data, words);
    }

    private static VfioContainer ContainerOf(Type1TestHost t, int containerFd)
    {
        Assert.True(t.Process.Fds.TryGet(containerFd, out OpenFile file));
        file.Put();
        return ((VfioContainerFile)file.Operations).Container;
    }
}
