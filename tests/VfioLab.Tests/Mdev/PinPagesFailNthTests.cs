using System.Text;
using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Iommu;
using VfioLab.Tests.Type1;
using VfioLab.Type1;

namespace VfioLab.Tests.Mdev;

/// <summary>
/// The fail-nth sweep over vfio_pin_pages (STYLE.md 14, spec §3.7 "all or nothing"): for n = 1, 2, ... the n-th
/// fallible step of one pin_pages call fails (GUP <c>pin</c>, <c>lock_acct</c>, <c>vpfn_alloc</c>, or any of them)
/// until the call succeeds. Each failure must return the injected errno and leave the pins, locked_vm, every
/// external pin with its count, the driver's own record and the dirty scope exactly as before (dirty bits set by
/// the call may stay, as in Linux), and the checker clean. The number of failure points is each site's calls.
/// </summary>
public sealed class PinPagesFailNthTests
{
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong Iova = 0x100000;
    private const int Pages = 8;

    private static readonly string[] Configs = ["no-domain", "domain", "no-domain-dirty", "domain-dirty", "repin", "64k-host"];

    private static readonly string[] Sites = ["pin", "lock_acct", "vpfn_alloc", "any"];

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

    [Theory]
    [MemberData(nameof(Cases))]
    public void PinPages_NthFallibleStepFails_ReturnsInjectedErrnoAndLeaksNothing(string config, string site)
    {
        MdevTestHost m = Build(config);
        State initial = Snapshot(m);

        int points = Sweep(m, site == "any" ? null : site);

        Assert.Equal(ExpectedPoints(config, site), points);
        Assert.True(m.Unpin(Iova, Pages));
        Assert.Equal(initial, Snapshot(m));
        m.AssertClean();
    }

    // Fails the 1st, 2nd, ... fallible call at the site (any site when null) until pin_pages succeeds; returns how
    // many failure points there were.
    private static int Sweep(MdevTestHost m, string? site)
    {
        for (int n = 1; ; n++)
        {
            Assert.True(n < 1000, "pin_pages never succeeded");
            State before = Snapshot(m);
            m.T.Host.Faults.Arm(n, site is null ? null : FaultSite.Named(site));
            long ret = m.Pin(Iova, Pages);
            bool fired = m.T.Host.Faults.Fired;
            m.T.Host.Faults.Arm(0);
            if (!fired)
            {
                Assert.Equal(Pages, ret);
                return n - 1;
            }
            if (site is null)
            {
                Assert.True(ret == Errno.ENOMEM.AsReturn() || ret == Errno.EINTR.AsReturn(), $"n={n}: {ErrnoExtensions.FromReturn(ret)}");
            }
            else
            {
                Assert.True(Injected(site).AsReturn() == ret, $"{site} n={n}: expected {Injected(site)}, got {ErrnoExtensions.FromReturn(ret)}");
            }
            State after = Snapshot(m);
            Assert.True(before == after, $"{site ?? "any"} n={n}: state changed\nbefore {before}\nafter  {after}");
            m.AssertClean();
        }
    }

    private static Errno Injected(string site) => site == "lock_acct" ? Errno.EINTR : Errno.ENOMEM;

    private static int ExpectedPoints(string config, string site)
    {
        bool domain = config.StartsWith("domain", StringComparison.Ordinal);
        // "repin": half the pages already have an external pin, which is only counted up.
        int fresh = config == "repin" ? Pages / 2 : Pages;
        return site switch
        {
            "pin" or "vpfn_alloc" => fresh,
            "lock_acct" => domain ? 0 : fresh,
            _ => (domain ? 2 : 3) * fresh,
        };
    }

    private static MdevTestHost Build(string config)
    {
        Type1TestHost t = config == "64k-host"
            ? new Type1TestHost(pageShift: 16, iommu: IommuHardwareProfile.SmmuV3)
            : new Type1TestHost();
        var m = new MdevTestHost(t, withGpu: config.StartsWith("domain", StringComparison.Ordinal));
        m.Map(Iova - (Iova % t.PageSize), 4 * MiB);
        // An unrelated external pin elsewhere, which every failure must leave alone.
        Assert.Equal(1, m.Pin(Iova + 2 * MiB, 1));
        if (config.EndsWith("dirty", StringComparison.Ordinal))
        {
            Assert.Equal(0, t.Dirty(m.Container, DirtyPagesFlags.Start));
        }
        if (config == "repin")
        {
            Assert.Equal(Pages / 2, m.Pin(Iova + ((ulong)Pages / 2 * t.PageSize), Pages / 2));
        }
        return m;
    }

    private readonly record struct State(ulong LockedVm, ulong TotalPins, ulong PinnedFrames, ulong DriverPins, int NonPinnedGroups, string Vpfns);

    private static State Snapshot(MdevTestHost m)
    {
        var vpfns = new StringBuilder();
        VfioIommuSnapshot s = m.Backend.Snapshot();
        foreach (VfioDmaSnapshot d in s.Mappings)
        {
            foreach (VpfnRun v in d.Vpfns)
            {
                vpfns.Append($"0x{v.Iova:x}+{v.Pages}:{v.Pfn.Value:x}x{v.RefCount} ");
            }
            vpfns.Append($"locked {d.LockedVm}; ");
        }
        return new State(m.T.LockedVmPages, m.T.TotalPins, m.T.PinnedFrames, m.Driver.PinsHeld, s.NumNonPinnedGroups, vpfns.ToString());
    }
}
