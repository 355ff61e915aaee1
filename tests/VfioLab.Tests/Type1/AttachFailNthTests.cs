using System.Text;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Tests.Type1;

/// <summary>
/// Fail-nth sweeps over group attach with replay (STYLE.md 14, spec §3.9, §3.10, invariant 16's spirit for
/// attach): each fallible step of one site fails in turn, n = 1, 2, ... until the attach succeeds; every
/// failure must return the site's errno and leave pins, charges, the existing domain's entries, the mappings,
/// the page sizes, the IOVA windows and the group exactly as before.
/// </summary>
public sealed class AttachFailNthTests
{
    private const ulong MiB = Type1TestHost.MiB;
    private const int MaxSweep = 10_000;

    private static readonly IommuHardwareProfile Other4K2M = IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M);

    // Three mappings over scattered 16-page frame runs: many physically contiguous chunks per mapping, and
    // the first one needs more than one GUP batch.
    private static readonly (ulong Iova, ulong Size)[] Mappings = [(0, 8 * MiB), (0x1000000, MiB), (0x10000000, MiB / 2)];

    private const ulong MappedBytes = 8 * MiB + MiB + (MiB / 2);

    [Theory]
    [InlineData(12, "iommu_domain_alloc", (int)Errno.ENOMEM, 1, 1)]
    [InlineData(12, "iommu_attach_group", (int)Errno.ENOMEM, 2, 2)]
    [InlineData(12, "iommu_map", (int)Errno.ENOMEM, 16, MaxSweep)]
    [InlineData(12, "pin", (int)Errno.ENOMEM, 0, 0)]
    [InlineData(12, "lock_acct", (int)Errno.EINTR, 0, 0)]
    [InlineData(16, "iommu_domain_alloc", (int)Errno.ENOMEM, 1, 1)]
    [InlineData(16, "iommu_attach_group", (int)Errno.ENOMEM, 2, 2)]
    [InlineData(16, "iommu_map", (int)Errno.ENOMEM, 16, MaxSweep)]
    [InlineData(16, "pin", (int)Errno.ENOMEM, 0, 0)]
    [InlineData(16, "lock_acct", (int)Errno.EINTR, 0, 0)]
    public void AttachGroup_FailNthReplayIntoNewDomain_EachFailureLeavesStateAsBefore(int pageShift, string site, int errno, int minFailures, int maxFailures)
    {
        // The group's IOMMU has other page sizes: the reuse attempt is refused (one iommu_attach_group to the
        // new domain, a refused one to the GPU's, a second to the new domain) and replay copies every run.
        var t = new Type1TestHost(pageShift: pageShift, otherIommu: Other4K2M, layout: Layout(pageShift));
        (int c, _) = t.Container();
        MapAll(t, c);
        Assert.Equal(MappedBytes >> pageShift, t.TotalPins);

        int failures = Sweep(t, c, Type1TestHost.OtherIommuGroup, site, (Errno)errno, Type1TestHost.GpuGroup);

        Assert.InRange(failures, minFailures, maxFailures);
        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        IommuDomain other = t.DomainOf(Type1TestHost.OtherIommuGroup)!;
        Assert.NotSame(gpu, other);
        foreach ((ulong iova, ulong size) in Mappings)
        {
            AttachTests.AssertSameTranslations(gpu, other, iova, size);
        }
        Assert.Equal(MappedBytes >> pageShift, t.TotalPins);
        Assert.Equal(MappedBytes >> pageShift, t.LockedVmPages);
        Assert.Equal((pageShift == 12 ? PageSizeBitmap.Size4K : PageSizeBitmap.Size64K) | PageSizeBitmap.Size2M, t.Backend(c).PgsizeBitmap);
    }

    [Theory]
    [InlineData(12, "iommu_domain_alloc", (int)Errno.ENOMEM, 1, 1)]
    [InlineData(12, "iommu_attach_group", (int)Errno.ENOMEM, 1, 1)]
    [InlineData(12, "iommu_map", (int)Errno.ENOMEM, 16, MaxSweep)]
    [InlineData(12, "pin", (int)Errno.ENOMEM, 4, MaxSweep)]
    [InlineData(12, "lock_acct", (int)Errno.EINTR, 16, MaxSweep)]
    [InlineData(16, "iommu_domain_alloc", (int)Errno.ENOMEM, 1, 1)]
    [InlineData(16, "iommu_attach_group", (int)Errno.ENOMEM, 1, 1)]
    [InlineData(16, "iommu_map", (int)Errno.ENOMEM, 16, MaxSweep)]
    [InlineData(16, "pin", (int)Errno.ENOMEM, 3, MaxSweep)]
    [InlineData(16, "lock_acct", (int)Errno.EINTR, 16, MaxSweep)]
    public void AttachGroup_FailNthReplayFromMdevOnlyContainer_ReleasesEveryPinTaken(int pageShift, string site, int errno, int minFailures, int maxFailures)
    {
        // Nothing is pinned before the attach: replay pins chunk by chunk from the attacher's mm and charges
        // it; a failure anywhere must give back every pin and charge the replay took so far.
        var t = new Type1TestHost(pageShift: pageShift, layout: Layout(pageShift));
        (int c, _) = t.Container(Type1TestHost.MdevGroup);
        MapAll(t, c);
        Assert.Equal(0UL, t.TotalPins);

        int failures = Sweep(t, c, Type1TestHost.GpuGroup, site, (Errno)errno, existingGroup: null);

        Assert.InRange(failures, minFailures, maxFailures);
        IommuDomain gpu = t.DomainOf(Type1TestHost.GpuGroup)!;
        foreach ((ulong iova, ulong size) in Mappings)
        {
            for (ulong off = 0; off < size; off += 0x1000)
            {
                Assert.True(gpu.Translate(new Iova(iova + off), write: true).Ok);
            }
        }
        Assert.Equal(MappedBytes >> pageShift, t.TotalPins);
        Assert.Equal(MappedBytes >> pageShift, t.PinnedFrames);
        Assert.Equal(MappedBytes >> pageShift, t.LockedVmPages);
    }

    [Theory]
    [InlineData("iommu_domain_alloc", 2, false)]
    [InlineData("iommu_attach_group", 2, true)]
    public void SetIommu_FailNthAttachingEveryGroup_LeavesNoState(string site, int expectedFailures, bool endsWithOwnDomain)
    {
        // SET_IOMMU attaches the GPU (new domain), the NIC (a second alloc and attach, then the reuse attach)
        // and the mdev; a failure detaches what was attached, releases the state and leaves the groups in the
        // container. The third iommu_attach_group is the reuse attempt: its failure is not an error, the NIC
        // keeps the domain it was given (§3.9 step 10).
        var t = new Type1TestHost();
        int c = t.OpenContainer();
        foreach (int g in new[] { Type1TestHost.GpuGroup, Type1TestHost.NicGroup, Type1TestHost.MdevGroup })
        {
            Assert.Equal(0, t.SetContainer(t.OpenGroup(g), c));
        }
        var events = AttachTests.EventCounter.Attach(t);
        int failures = 0;
        for (int n = 1; n <= MaxSweep; n++)
        {
            t.Host.Faults.Arm(n, FaultSite.Named(site));
            long ret = t.SetIommu(c);
            bool fired = t.Host.Faults.Fired;
            t.Host.Faults.Arm(0);
            if (ret == 0)
            {
                Assert.Equal(endsWithOwnDomain, fired);
                break;
            }
            failures++;
            Assert.True(fired);
            Assert.Equal(Errno.ENOMEM.AsReturn(), ret);
            Assert.Equal(0, events.LiveDomains);
            Assert.Null(t.DomainOf(Type1TestHost.GpuGroup));
            Assert.Null(t.DomainOf(Type1TestHost.NicGroup));
            Assert.NotNull(t.IommuGroup(Type1TestHost.GpuGroup).DmaOwner);
            Assert.Equal(0, t.Sys.Ioctl(c, VfioIoctl.CheckExtension, VfioExtension.UpdateVaddr));
            Assert.Empty(new InvariantChecker(t.Host).Check());
        }

        Assert.Equal(expectedFailures, failures);
        Assert.Equal(!endsWithOwnDomain, ReferenceEquals(t.DomainOf(Type1TestHost.GpuGroup), t.DomainOf(Type1TestHost.NicGroup)));
        Assert.Equal(endsWithOwnDomain ? 2 : 1, events.LiveDomains);
    }

    // 64 KiB frame runs either way: 16 pages of 4 KiB or 4 of 64 KiB, so every mapping has many chunks.
    private static FrameLayout Layout(int pageShift) => FrameLayout.ScatteredRuns(pageShift == 12 ? 16UL : 4UL, 7);

    // Arms the site at n = 1, 2, ... and attaches the group until it succeeds; returns the failures seen.
    private static int Sweep(Type1TestHost t, int containerFd, int group, string site, Errno expected, int? existingGroup)
    {
        var events = AttachTests.EventCounter.Attach(t);
        int groupFd = t.OpenGroup(group);
        string before = Snapshot(t, containerFd, group, existingGroup, events);
        for (int n = 1; n <= MaxSweep; n++)
        {
            t.Host.Faults.Arm(n, FaultSite.Named(site));
            long ret = t.SetContainer(groupFd, containerFd);
            bool fired = t.Host.Faults.Fired;
            t.Host.Faults.Arm(0);
            if (ret == 0)
            {
                Assert.False(fired, $"{site} #{n} fired but the attach succeeded");
                Assert.Empty(new InvariantChecker(t.Host).Check());
                return n - 1;
            }
            Assert.True(fired, $"attach failed with {ErrnoExtensions.FromReturn(ret)} without {site} #{n} firing");
            Assert.Equal(expected.AsReturn(), ret);
            Assert.Equal(before, Snapshot(t, containerFd, group, existingGroup, events));
            Assert.Empty(new InvariantChecker(t.Host).Check());
        }
        Assert.Fail($"attach still failing after {MaxSweep} injected {site} failures");
        return -1;
    }

    private static void MapAll(Type1TestHost t, int containerFd)
    {
        foreach ((ulong iova, ulong size) in Mappings)
        {
            Assert.Equal(0, t.Map(containerFd, iova, t.MmapAnonymous(size, populate: true), size));
        }
    }

    // Everything an attach may touch, as text so a mismatch shows which part moved.
    private static string Snapshot(Type1TestHost t, int containerFd, int group, int? existingGroup, AttachTests.EventCounter events)
    {
        var s = new StringBuilder();
        s.Append($"pins={t.TotalPins} frames={t.PinnedFrames} locked_vm={t.LockedVmPages}\n");
        s.Append($"mappings={t.Backend(containerFd).MappingCount} avail={t.Backend(containerFd).DmaAvail}\n");
        s.Append($"pgsizes={PageSizeBitmap.Format(t.Backend(containerFd).PgsizeBitmap)}\n");
        s.Append($"iova=[{string.Join(", ", t.Backend(containerFd).IovaRanges)}]\n");
        s.Append($"live_domains={events.LiveDomains}\n");
        s.Append($"group: domain={t.DomainOf(group)?.Name ?? "none"} container={t.Host.Vfio.FindGroup(group)!.Container?.Id.ToString() ?? "none"} " +
            $"owner={(t.IommuGroup(group).DmaOwner is null ? "none" : "claimed")}\n");
        if (existingGroup is int g)
        {
            IommuDomain d = t.DomainOf(g)!;
            s.Append($"existing {d.Name}: entries={d.TotalEntries} groups={d.AttachedGroups.Count} pending={d.PendingInvalidations().Count}\n");
            foreach (MappedRun r in d.MappedRuns())
            {
                s.Append($"  {r.Iova} -> {r.Phys} {r.PageSize:x} {r.Prot}\n");
            }
        }
        return s.ToString();
    }
}
