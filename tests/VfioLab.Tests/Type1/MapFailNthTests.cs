using System.Text;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Tests.Type1;

/// <summary>
/// The fail-nth sweep over MAP_DMA (STYLE.md 14, spec §4.16 "MAP is atomic"): for n = 1, 2, ... the n-th
/// fallible step of one MAP fails (GUP <c>pin</c>, <c>lock_acct</c>, <c>iommu_map</c> per domain and
/// page-size batch, <c>dma_alloc</c>, <c>bitmap_alloc</c>, or any of them), until the MAP succeeds. Each
/// failure must return the injected errno and leave locked_vm, pins, mappings, slots and every domain's
/// page table exactly as before; a mapping made earlier stays untouched.
/// </summary>
public sealed class MapFailNthTests
{
    private const ulong KiB = Type1TestHost.KiB;
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong SweepIova = 16 * MiB;

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (string config in Configs)
        {
            foreach (string site in Sites)
            {
                data.Add(config, site);
            }
        }
        return data;
    }

    private static readonly string[] Configs =
        ["one-domain", "two-domains", "scattered", "scattered-two-domains", "dirty", "dirty-two-domains", "hugetlb", "64k-host", "pfnmap-mix", "tight-memlock", "no-domain", "no-domain-dirty"];

    private static readonly string[] Sites = ["pin", "lock_acct", "iommu_map", "dma_alloc", "bitmap_alloc", "any"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void MapDma_NthFallibleStepFails_ReturnsInjectedErrnoAndLeavesStateUnchanged(string config, string site)
    {
        Setup s = Build(config);
        State initial = Snapshot(s);

        int points = Sweep(s, site == "any" ? null : site);

        Assert.Equal(Reachable(config, site), points > 0);
        // The successful MAP charged and pinned what it should, and unmapping restores the start.
        State mapped = Snapshot(s);
        Assert.Equal(initial.Mappings + 1, mapped.Mappings);
        Assert.Equal(initial.DmaAvail - 1, mapped.DmaAvail);
        Assert.Equal(initial.LockedVm + s.ChargedPages, mapped.LockedVm);
        Assert.Equal(initial.TotalPins + s.ChargedPages, mapped.TotalPins);
        Assert.Equal(0, s.T.Unmap(s.Container, SweepIova, s.Size).Ret);
        Assert.Equal(initial, Snapshot(s));
    }

    [Theory]
    [InlineData("one-domain")]
    [InlineData("scattered-two-domains")]
    [InlineData("dirty-two-domains")]
    [InlineData("pfnmap-mix")]
    public void MapDma_AnyStepFails_FailurePointsAreTheSumOfEverySite(string config)
    {
        int sum = 0;
        foreach (string site in Sites)
        {
            if (site != "any")
            {
                sum += Sweep(Build(config), site);
            }
        }

        int any = Sweep(Build(config), null);

        Assert.Equal(sum, any);
    }

    [Fact]
    public void MapDma_IommuMapFailsInSecondDomain_FirstDomainUnmappedAgain()
    {
        Setup s = Build("two-domains");
        State before = Snapshot(s);
        // The last iommu_map of a one-chunk MAP goes into the last domain in list order, after the
        // chunk is already in the other one.
        int calls = Sweep(s, "iommu_map");
        Assert.Equal(0, s.T.Unmap(s.Container, SweepIova, s.Size).Ret);
        s.T.Host.Faults.Arm(calls, FaultSite.IommuMap);

        Assert.Equal(Errno.ENOMEM.AsReturn(), s.T.Map(s.Container, SweepIova, s.Vaddr, s.Size));

        Assert.True(s.T.Host.Faults.Fired);
        s.T.Host.Faults.Arm(0);
        Assert.Equal(before, Snapshot(s));
        Assert.All(s.Domains, d => Assert.False(d.Translate(new Iova(SweepIova), write: false).Ok));
    }

    // Fails the 1st, 2nd, ... call at the site (any site when null) until MAP succeeds; returns how many
    // failure points there were.
    private static int Sweep(Setup s, string? site)
    {
        int absorbed = 0;
        for (int n = 1; ; n++)
        {
            Assert.True(n < 10_000, "MAP never succeeded");
            State before = Snapshot(s);
            s.T.Host.Faults.Arm(n, site is null ? null : FaultSite.Named(site));
            long ret = s.T.Map(s.Container, SweepIova, s.Vaddr, s.Size);
            bool fired = s.T.Host.Faults.Fired;
            s.T.Host.Faults.Arm(0);
            if (!fired)
            {
                Assert.Equal(0, ret);
                return n - 1 - absorbed;
            }
            if (ret == 0)
            {
                // A GUP failure on a VM_PFNMAP range falls back to the page-table walk and succeeds,
                // whatever GUP's error was (vaddr_get_pfns): not a failure point. Undo the mapping.
                Assert.Equal(0, s.T.Unmap(s.Container, SweepIova, s.Size).Ret);
                Assert.Equal(before, Snapshot(s));
                absorbed++;
                continue;
            }
            if (site is null)
            {
                Assert.True(ret == Errno.ENOMEM.AsReturn() || ret == Errno.EINTR.AsReturn(), $"n={n}: {ErrnoExtensions.FromReturn(ret)}");
            }
            else
            {
                Assert.True(Injected(site).AsReturn() == ret, $"{site} n={n}: expected {Injected(site)}, got {ErrnoExtensions.FromReturn(ret)}");
            }
            State after = Snapshot(s);
            Assert.True(before == after, $"{site ?? "any"} n={n}: state changed\nbefore {before}\nafter  {after}");
        }
    }

    private static Errno Injected(string site) => site == "lock_acct" ? Errno.EINTR : Errno.ENOMEM;

    private static bool Reachable(string config, string site)
    {
        bool noDomain = config.StartsWith("no-domain", StringComparison.Ordinal);
        bool dirty = config.Contains("dirty", StringComparison.Ordinal);
        return site switch
        {
            "pin" or "lock_acct" or "iommu_map" => !noDomain,
            "bitmap_alloc" => dirty,
            _ => true,
        };
    }

    private sealed record Setup(Type1TestHost T, int Container, ulong Vaddr, ulong Size, ulong ChargedPages, IommuDomain[] Domains);

    private static Setup Build(string config)
    {
        var other = IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M);
        bool twoDomains = config.EndsWith("two-domains", StringComparison.Ordinal);
        Type1TestHost t = config switch
        {
            "scattered" or "scattered-two-domains" => new Type1TestHost(layout: FrameLayout.ScatteredRuns(16, 3), otherIommu: twoDomains ? other : null),
            "64k-host" => new Type1TestHost(pageShift: 16, iommu: IommuHardwareProfile.SmmuV3),
            "tight-memlock" => new Type1TestHost(memlock: 3 * MiB),
            // Another driver's PFNMAP is walked as upstream does; the seeds profile would refuse it (strict_mmio_maps).
            "pfnmap-mix" => new Type1TestHost(kernel: VfioLab.Simulation.KernelSettings.Default with { Profile = VfioLab.Simulation.KernelSettings.Linux618 }),
            _ => new Type1TestHost(otherIommu: twoDomains ? other : null),
        };
        bool noDomain = config.StartsWith("no-domain", StringComparison.Ordinal);
        (int c, _) = t.Container(noDomain ? Type1TestHost.MdevGroup : Type1TestHost.GpuGroup);
        if (twoDomains)
        {
            t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        }
        if (config.Contains("dirty", StringComparison.Ordinal))
        {
            Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        }

        // A mapping made before the sweep, which every failure must leave alone.
        ulong earlier = t.MmapAnonymous(1 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0, earlier, 1 * MiB));

        ulong size = 2 * MiB;
        ulong vaddr;
        ulong charged = noDomain ? 0 : size / t.PageSize;
        switch (config)
        {
            case "hugetlb":
                vaddr = t.MmapHuge(size, MmapFlags.Huge2MiB);
                // Fault the huge page in now, so the sweep's state holds only what MAP itself does.
                Assert.Equal(0, t.Sys.WriteMemory(vaddr, [1]));
                break;
            case "pfnmap-mix":
                vaddr = t.MmapAnonymous(size, populate: true);
                Pfn mmio = t.Machine.AllocateMmioPfns((size / 2) / t.PageSize);
                Assert.Equal((long)(vaddr + (size / 2)), t.Process.Mm!.MmapOtherMmio(vaddr + (size / 2), size / 2,
                    MemoryProtection.Read | MemoryProtection.Write, true, false, mmio));
                charged /= 2;
                break;
            default:
                vaddr = t.MmapAnonymous(size, populate: true);
                break;
        }

        var domains = new List<IommuDomain>();
        foreach (int g in new[] { Type1TestHost.GpuGroup, Type1TestHost.OtherIommuGroup })
        {
            if (t.Host.IommuGroups.ContainsKey(g) && t.DomainOf(g) is { } d && !domains.Contains(d))
            {
                domains.Add(d);
            }
        }
        Assert.Equal(noDomain ? 0 : twoDomains ? 2 : 1, domains.Count);
        return new Setup(t, c, vaddr, size, charged, [.. domains]);
    }

    private readonly record struct State(ulong LockedVm, ulong TotalPins, ulong PinnedFrames, ulong FreeFrames, ulong Mappings, ulong DmaAvail, string Tables);

    private static State Snapshot(Setup s)
    {
        var tables = new StringBuilder();
        foreach (IommuDomain d in s.Domains)
        {
            tables.Append(d.Name).Append(": ").Append(d.TotalEntries).Append(" entries");
            foreach (MappedRun r in d.MappedRuns())
            {
                tables.Append("; ").Append(r);
            }
            tables.Append('\n');
        }
        Type1TestHost t = s.T;
        return new State(t.LockedVmPages, t.TotalPins, t.PinnedFrames, t.Machine.Memory.FreeFrameCount,
            t.Backend(s.Container).MappingCount, t.Backend(s.Container).DmaAvail, tables.ToString());
    }
}
