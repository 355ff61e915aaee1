using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Type1;

namespace VfioLab.Tests.Type1;

/// <summary>
/// Group attach to a type1 container (spec §3.9, §3.10, §2.6, §2.8): domain reuse, a new domain filled by
/// replay, the page-size AND, isolated MSI, aperture and reserved-region conflicts, the IOVA windows, replay
/// pinning from the attaching process and its unwind. Each test asserts the exact errno, then the state.
/// </summary>
public sealed partial class AttachTests
{
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong VtDSizes = PageSizeBitmap.Size4K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G;
    private const ulong VtDLast = (1UL << 48) - 1;

    /// <summary>PAGE_MASK on a 4 KiB host: the sizes offered with no domain.</summary>
    private const ulong PageMask = ~0xfffUL;

    private static readonly ByteRange[] VtDWindows = [new(0, 0xfedfffff), new(0xfef00000, VtDLast)];

    private static IommuHardwareProfile Other(ulong? pgsizes = null, ByteRange? aperture = null, ReservedRegion[]? extra = null,
        bool? isolatedMsi = null, bool? coherent = null) =>
        IommuHardwareProfile.VtD.WithOverrides(pgsizes, aperture, extra, isolatedMsi, coherent);

    private static readonly IommuHardwareProfile Other4K2M = Other(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M);

    [Fact]
    public void AttachGroup_CompatibleGroup_ReusesDomainWithoutNewPins()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0x100000, t.MmapAnonymous(4 * MiB), 4 * MiB));
        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        ulong entries = gpu.TotalEntries;
        var events = EventCounter.Attach(t);

        t.AddGroup(c, Type1TestHost.NicGroup);

        Assert.Same(gpu, t.DomainOf(Type1TestHost.NicGroup));
        Assert.Equal(2, gpu.AttachedGroups.Count);
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(1024UL, t.LockedVmPages);
        Assert.Equal(entries, gpu.TotalEntries);
        Assert.Equal(VtDSizes, t.Backend(c).PgsizeBitmap);
        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
        // A domain was allocated for the group, then freed when the existing one took it (§3.9 step 10).
        Assert.Equal(1, events["iommu_domain_alloc"]);
        Assert.Equal(1, events["iommu_domain_free"]);
    }

    [Fact]
    public void AttachGroup_ReuseAttachFails_KeepsNewDomainAndReplays()
    {
        // §3.9 step 10: when attaching to the compatible domain fails, the group goes back to its new domain
        // and the search goes on; with no other candidate the new domain is replayed. Two domains with the
        // same ops and coherency then coexist.
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        int nic = t.OpenGroup(Type1TestHost.NicGroup);
        t.Host.Faults.Arm(2, FaultSite.IommuAttachGroup);

        long ret = t.SetContainer(nic, c);

        Assert.True(t.Host.Faults.Fired);
        t.Host.Faults.Arm(0);
        Assert.Equal(0, ret);
        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        IommuDomain own = t.DomainOf(Type1TestHost.NicGroup)!;
        Assert.NotSame(gpu, own);
        AssertSameTranslations(gpu, own, 0, 4 * MiB);
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(1024UL, t.LockedVmPages);
    }

    [Fact]
    public void AttachGroup_OtherPageSizes_NewDomainReplaysSameTranslationsWithoutNewPins()
    {
        var t = new Type1TestHost(otherIommu: Other4K2M, layout: FrameLayout.ScatteredRuns(16, 7));
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        Assert.Equal(0, t.Map(c, 0x40000000, t.MmapAnonymous(2 * MiB), 2 * MiB));
        ulong pins = t.TotalPins;
        ulong frames = t.PinnedFrames;

        t.AddGroup(c, Type1TestHost.OtherIommuGroup);

        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        IommuDomain other = t.DomainOf(Type1TestHost.OtherIommuGroup)!;
        Assert.NotSame(gpu, other);
        AssertSameTranslations(gpu, other, 0, 4 * MiB);
        AssertSameTranslations(gpu, other, 0x40000000, 2 * MiB);
        Assert.Equal(1536UL, pins);
        Assert.Equal(pins, t.TotalPins);
        Assert.Equal(frames, t.PinnedFrames);
        Assert.Equal(1536UL, t.LockedVmPages);
        Assert.Equal(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, t.Backend(c).PgsizeBitmap);
        Assert.Equal(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, GetInfoPgsizes(t, c));
    }

    [Fact]
    public void AttachGroup_64KiBHostOtherPageSizes_FoldsSubPageSizesAndPinsOncePerPage()
    {
        // PAGE_SIZE 64 KiB: the 4 KiB IOMMU sizes fold into PAGE_SIZE (§2.6); pins count 64 KiB pages.
        var t = new Type1TestHost(pageShift: 16, otherIommu: Other4K2M);
        (int c, _) = t.Container();
        Assert.Equal(PageSizeBitmap.Size64K | PageSizeBitmap.Size2M | PageSizeBitmap.Size1G, t.Backend(c).PgsizeBitmap);
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        Assert.Equal(64UL, t.TotalPins);

        t.AddGroup(c, Type1TestHost.OtherIommuGroup);

        AssertSameTranslations(t.DomainOf(Type1TestHost.GpuGroup)!, t.DomainOf(Type1TestHost.OtherIommuGroup)!, 0, 4 * MiB);
        Assert.Equal(64UL, t.TotalPins);
        Assert.Equal(64UL, t.LockedVmPages);
        Assert.Equal(PageSizeBitmap.Size64K | PageSizeBitmap.Size2M, t.Backend(c).PgsizeBitmap);
        Assert.Equal(PageSizeBitmap.Size64K | PageSizeBitmap.Size2M, GetInfoPgsizes(t, c));
    }

    [Fact]
    public void AttachGroup_64KiBHostMdevOnlyContainer_ReplayPinsPages()
    {
        var t = new Type1TestHost(pageShift: 16);
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        Assert.Equal(~0xffffUL, t.Backend(c).PgsizeBitmap);
        Assert.Equal(0, t.Map(c, 0x10000, t.MmapAnonymous(MiB), MiB));

        t.AddGroup(c, Type1TestHost.GpuGroup);

        Assert.Equal(16UL, t.TotalPins);
        Assert.Equal(16UL, t.LockedVmPages);
        Assert.True(t.DomainOf(Type1TestHost.GpuGroup)!.Translate(new Iova(0x10000 + MiB - 0x1000), write: true).Ok);
        Assert.False(t.DomainOf(Type1TestHost.GpuGroup)!.Translate(new Iova(0x10000 + MiB), write: false).Ok);
    }

    [Fact]
    public void AttachGroup_OtherCannotEnforceCoherency_GetsOwnDomain()
    {
        var t = new Type1TestHost(otherIommu: Other(coherent: false));
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));

        t.AddGroup(c, Type1TestHost.OtherIommuGroup);

        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        IommuDomain other = t.DomainOf(Type1TestHost.OtherIommuGroup)!;
        Assert.NotSame(gpu, other);
        Assert.True(gpu.EnforceCacheCoherency);
        Assert.False(other.EnforceCacheCoherency);
        AssertSameTranslations(gpu, other, 0, 4 * MiB);
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(VtDSizes, t.Backend(c).PgsizeBitmap);
    }

    [Fact]
    public void DetachGroup_DomainWithOtherPageSizesLeaves_RestoresBitmap()
    {
        var t = new Type1TestHost(otherIommu: Other4K2M);
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        int other = t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        Assert.Equal(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, t.Backend(c).PgsizeBitmap);

        Assert.Equal(0, t.UnsetContainer(other));

        Assert.Equal(VtDSizes, t.Backend(c).PgsizeBitmap);
        Assert.Equal(VtDSizes, GetInfoPgsizes(t, c));
        Assert.Equal(1024UL, t.TotalPins);
    }

    [Fact]
    public void AttachGroup_VaddrInvalidated_ReturnsEBUSYUntilVaddrRestored()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB));
        Assert.Equal(0, t.Unmap(c, 0, 2 * MiB, DmaUnmapFlags.Vaddr).Ret);
        int nic = t.OpenGroup(Type1TestHost.NicGroup);
        int mdev = t.OpenGroup(Type1TestHost.MdevGroup);

        Assert.Equal(Errno.EBUSY.AsReturn(), t.SetContainer(nic, c));
        Assert.Equal(Errno.EBUSY.AsReturn(), t.SetContainer(mdev, c));

        Assert.Null(t.DomainOf(Type1TestHost.NicGroup));
        Assert.Null(t.Host.Vfio.FindGroup(Type1TestHost.NicGroup)!.Container);
        Assert.Null(t.Host.Vfio.FindGroup(Type1TestHost.MdevGroup)!.Container);
        Assert.Null(t.IommuGroup(Type1TestHost.NicGroup).DmaOwner);
        Assert.Equal(0, t.Map(c, 0, buf, 2 * MiB, DmaMapFlags.Vaddr));
        Assert.Equal(0, t.SetContainer(nic, c));
    }

    [Fact]
    public void AttachGroup_NoIsolatedMsi_ReturnsEPERMAndChangesNothing()
    {
        var t = new Type1TestHost(otherIommu: Other(isolatedMsi: false));
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));
        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        ulong entries = gpu.TotalEntries;
        var events = EventCounter.Attach(t);
        int g = t.OpenGroup(Type1TestHost.OtherIommuGroup);

        Assert.Equal(Errno.EPERM.AsReturn(), t.SetContainer(g, c));

        Assert.Null(t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Null(t.IommuGroup(Type1TestHost.OtherIommuGroup).DmaOwner);
        Assert.Null(t.Host.Vfio.FindGroup(Type1TestHost.OtherIommuGroup)!.Container);
        Assert.Single(gpu.AttachedGroups);
        Assert.Equal(entries, gpu.TotalEntries);
        Assert.Equal(1024UL, t.TotalPins);
        Assert.Equal(VtDWindows, t.Backend(c).IovaRanges);
        Assert.Equal(0, events.LiveDomains);
    }

    [Fact]
    public void AttachGroup_NoIsolatedMsiWithAllowUnsafeInterrupts_Attaches()
    {
        var t = new Type1TestHost(otherIommu: Other(isolatedMsi: false), kernel: KernelSettings.Default with { AllowUnsafeInterrupts = true });
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0, t.MmapAnonymous(4 * MiB), 4 * MiB));

        t.AddGroup(c, Type1TestHost.OtherIommuGroup);

        // Same sizes and coherency: the GPU's domain is reused.
        Assert.Same(t.DomainOf(Type1TestHost.GpuGroup), t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Equal(1024UL, t.TotalPins);
    }

    [Fact]
    public void SetIommu_OnlyGroupWithoutIsolatedMsi_ReturnsEPERMAndLeavesNoState()
    {
        var t = new Type1TestHost(otherIommu: Other(isolatedMsi: false));
        int c = t.OpenContainer();
        int g = t.OpenGroup(Type1TestHost.OtherIommuGroup);
        Assert.Equal(0, t.SetContainer(g, c));

        Assert.Equal(Errno.EPERM.AsReturn(), t.SetIommu(c));

        Assert.Null(t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0, t.MmapAnonymous(MiB), MiB));
    }

    [Fact]
    public void SetIommu_SecondGroupRefused_DetachesFirstAndLeavesNoState()
    {
        // vfio_ioctl_set_iommu attaches every group; on a failure the attached ones are detached in reverse
        // and the state released. The groups stay in the container, DMA ownership still claimed.
        var t = new Type1TestHost(otherIommu: Other(isolatedMsi: false));
        int c = t.OpenContainer();
        int gpu = t.OpenGroup(Type1TestHost.GpuGroup);
        int other = t.OpenGroup(Type1TestHost.OtherIommuGroup);
        Assert.Equal(0, t.SetContainer(gpu, c));
        Assert.Equal(0, t.SetContainer(other, c));
        var events = EventCounter.Attach(t);

        Assert.Equal(Errno.EPERM.AsReturn(), t.SetIommu(c));

        Assert.Null(t.DomainOf(Type1TestHost.GpuGroup));
        Assert.Null(t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Equal(0, events.LiveDomains);
        Assert.Equal(2, events["iommu_domain_alloc"]);
        Assert.NotNull(t.IommuGroup(Type1TestHost.GpuGroup).DmaOwner);
        Assert.NotNull(t.Host.Vfio.FindGroup(Type1TestHost.OtherIommuGroup)!.Container);
        Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.CheckExtension, VfioExtension.UpdateVaddr));
        Assert.Equal(0, t.UnsetContainer(other));
        Assert.Equal(0, t.SetIommu(c));
    }

    [Fact]
    public void AttachGroup_NewDomainMinPageAboveMappingAlignment_ReturnsEINVALFromReplay()
    {
        // type1 only warns about an IOMMU whose smallest page exceeds PAGE_SIZE; replaying a 4 KiB-aligned
        // mapping into it fails in iommu_map's alignment check, and the replay unwinds.
        var t = new Type1TestHost(otherIommu: Other(PageSizeBitmap.Size64K | PageSizeBitmap.Size2M));
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0x1000, t.MmapAnonymous(MiB), MiB));
        var events = EventCounter.Attach(t);
        int g = t.OpenGroup(Type1TestHost.OtherIommuGroup);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.SetContainer(g, c));

        Assert.Null(t.DomainOf(Type1TestHost.OtherIommuGroup));
        Assert.Equal(0, events.LiveDomains);
        Assert.Equal(256UL, t.TotalPins);
        Assert.Equal(VtDSizes, t.Backend(c).PgsizeBitmap);
    }

    [Fact]
    public void AttachGroup_NewDomainMinPageAboveMappingsAligned_AndsToItsSizes()
    {
        var t = new Type1TestHost(otherIommu: Other(PageSizeBitmap.Size64K | PageSizeBitmap.Size2M), layout: FrameLayout.ScatteredRuns(16, 3));
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, 0x200000, t.MmapAnonymous(2 * MiB, populate: true), 2 * MiB));

        t.AddGroup(c, Type1TestHost.OtherIommuGroup);

        AssertSameTranslations(t.DomainOf(Type1TestHost.GpuGroup)!, t.DomainOf(Type1TestHost.OtherIommuGroup)!, 0x200000, 2 * MiB);
        Assert.Equal(PageSizeBitmap.Size2M, t.Backend(c).PgsizeBitmap);
        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0x1000000, t.MmapAnonymous(MiB), MiB));
    }

    internal static void AssertSameTranslations(IommuDomain a, IommuDomain b, ulong iova, ulong size)
    {
        // Translate, not IovaToPhys: a mapping of physical address 0 reads as a hole there.
        for (ulong off = 0; off < size; off += 0x1000)
        {
            IommuTranslation ta = a.Translate(new Iova(iova + off), write: true);
            IommuTranslation tb = b.Translate(new Iova(iova + off), write: true);
            Assert.True(ta.Ok && tb.Ok, $"iova 0x{iova + off:x} not translated by both");
            Assert.Equal(ta.Phys, tb.Phys);
        }
    }

    private static ulong PhysOf(IommuDomain domain, ulong iova)
    {
        IommuTranslation tr = domain.Translate(new Iova(iova), write: false);
        Assert.True(tr.Ok, $"iova 0x{iova:x} not translated");
        return tr.Phys.Value;
    }

    private static ulong GetInfoPgsizes(Type1TestHost t, int containerFd)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1Info.SizeOf];
        new VfioIommuType1Info { Argsz = VfioIommuType1Info.SizeOf }.Write(buf);
        Assert.Equal(0, t.Sys.Ioctl(containerFd, VfioIoctl.IommuGetInfo, buf));
        Assert.True(VfioIommuType1Info.TryRead(buf, out VfioIommuType1Info info));
        Assert.True((info.Flags & IommuInfoFlags.Pgsizes) != 0);
        return info.IovaPgsizes;
    }

    private static ulong FrameOf(AddressSpace mm, ulong vaddr)
    {
        mm.MmapReadLock();
        try
        {
            Assert.True(mm.TryTranslateLocked(new HostVirtAddr(vaddr), out Pte pte));
            return pte.Pfn.Value;
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    private static int OpenGroup(ISyscallSurface sys, int number)
    {
        int fd = sys.Open($"/dev/vfio/{number}");
        Assert.True(fd >= 0, $"open failed: {ErrnoExtensions.FromReturn(fd)}");
        return fd;
    }

    private static long SetContainer(ISyscallSurface sys, int groupFd, int containerFd)
    {
        Span<byte> arg = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(arg, containerFd);
        return sys.Ioctl(groupFd, VfioIoctl.GroupSetContainer, arg);
    }

    /// <summary>Counts trace events by kind from the moment it is attached to a host.</summary>
    internal sealed class EventCounter
    {
        private readonly Dictionary<string, long> _counts = [];

        private EventCounter()
        {
        }

        public long this[string kind]
        {
            get { lock (_counts) { return _counts.GetValueOrDefault(kind); } }
        }

        /// <summary>Domains allocated minus domains freed since attaching.</summary>
        public long LiveDomains => this["iommu_domain_alloc"] - this["iommu_domain_free"];

        public static EventCounter Attach(Type1TestHost t)
        {
            var counter = new EventCounter();
            t.Host.Trace.Subscribe(e =>
            {
                lock (counter._counts)
                {
                    counter._counts[e.Kind] = counter._counts.GetValueOrDefault(e.Kind) + 1;
                }
            });
            return counter;
        }
    }
}
