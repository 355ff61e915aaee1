using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

/// <summary>GUP's one-page lane (<see cref="Gup.PinUserPageLocked"/>, issue 16) against the general walk
/// (<see cref="Gup.PinUserPagesLocked(AddressSpace, HostVirtAddr, ulong, bool, Span{PfnRun}, out int)"/> of one page) on
/// twin hosts: the same answer, runs, pins, page table, free frames and fault-site calls after every kind of page the
/// walk meets (present, untouched, the zero frame kept or unshared, COW-shared after fork, shared memory, read-only,
/// a hole, PFNMAP, a dead mm, the pin and alloc fault sites).</summary>
public class GupOnePageLaneTests
{
    private static readonly GupBehavior Linux61 = new(LongTermPinUnsharesZeroPage: false);

    public static TheoryData<string, bool, bool> Cases()
    {
        var data = new TheoryData<string, bool, bool>();
        string[] setups = ["populated", "untouched", "zero-page", "forked", "forked-then-child-wrote", "shared", "read-only", "read-only-populated",
            "hole", "pfnmap", "dead-mm", "pin-fault", "alloc-fault"];
        foreach (string setup in setups)
        {
            foreach (bool write in new[] { true, false })
            {
                foreach (bool keepZero in new[] { false, true })
                {
                    data.Add(setup, write, keepZero);
                }
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void OnePageLane_AnswersAndLeavesTheHostAsTheWalk(string setup, bool write, bool keepZero)
    {
        (Machine laneHost, AddressSpace laneMm, ulong laneVaddr) = Build(setup, keepZero);
        (Machine walkHost, AddressSpace walkMm, ulong walkVaddr) = Build(setup, keepZero);
        Assert.Equal(Describe(walkHost, walkMm, walkVaddr), Describe(laneHost, laneMm, laneVaddr));

        var laneRuns = new PfnRun[4];
        var walkRuns = new PfnRun[4];
        laneMm.MmapReadLock();
        long lane = Gup.PinUserPageLocked(laneMm, new HostVirtAddr(laneVaddr), write, laneRuns, out int laneCount);
        laneMm.MmapReadUnlock();
        walkMm.MmapReadLock();
        long walk = Gup.PinUserPagesLocked(walkMm, new HostVirtAddr(walkVaddr), 1, write, walkRuns, out int walkCount);
        walkMm.MmapReadUnlock();

        Assert.Equal(walk, lane);
        Assert.Equal(walkCount, laneCount);
        Assert.Equal(walkRuns[..walkCount], laneRuns[..laneCount]);
        Assert.Equal(Describe(walkHost, walkMm, walkVaddr), Describe(laneHost, laneMm, laneVaddr));
        Assert.Equal(walkHost.Faults.Calls, laneHost.Faults.Calls);
    }

    [Fact]
    public void PinUserPages_OfOnePage_TakesTheLaneAndStaysExact()
    {
        // The public entry routes one page to the lane: a present page and a COW-shared one pin as the walk pins them.
        foreach (string setup in new[] { "populated", "forked", "zero-page" })
        {
            (Machine a, AddressSpace mmA, ulong va) = Build(setup, keepZero: false);
            (Machine b, AddressSpace mmB, ulong vb) = Build(setup, keepZero: false);
            Assert.Equal(1, Pin(mmA, va, 1, false, out PfnRun[] ra));
            mmB.MmapReadLock();
            var rb = new PfnRun[4];
            Assert.Equal(1, Gup.PinUserPagesLocked(mmB, new HostVirtAddr(vb), 1, false, rb, out int nb));
            mmB.MmapReadUnlock();
            Assert.Equal(rb[..nb], ra);
            Assert.Equal(Describe(b, mmB, vb), Describe(a, mmA, va));
        }
    }

    private static (Machine, AddressSpace, ulong) Build(string setup, bool keepZero)
    {
        var m = new Machine(64 * MiB, gup: keepZero ? Linux61 : null);
        Process p = m.Spawn("p");
        AddressSpace mm = p.Mm!;
        ulong a;
        switch (setup)
        {
            case "populated":
                a = MmapAnon(mm, 0x4000, extra: MmapFlags.Populate);
                break;
            case "untouched":
                a = MmapAnon(mm, 0x4000);
                break;
            case "zero-page":
                a = MmapAnon(mm, 0x4000);
                Assert.Equal(0, p.Syscalls.ReadMemory(a, new byte[0x4000]));
                break;
            case "forked":
            case "forked-then-child-wrote":
                a = MmapAnon(mm, 0x4000, extra: MmapFlags.Populate);
                Assert.Equal(Errno.None, p.TryFork(out Process? child));
                if (setup == "forked-then-child-wrote")
                {
                    Assert.Equal(0, child!.Syscalls.WriteMemory(a, [1]));
                }
                break;
            case "shared":
                a = MmapAnon(mm, 0x4000, extra: MmapFlags.Shared | MmapFlags.Populate);
                break;
            case "read-only":
                a = MmapAnon(mm, 0x4000, MemoryProtection.Read);
                break;
            case "read-only-populated":
                a = MmapAnon(mm, 0x4000, MemoryProtection.Read, MmapFlags.Populate);
                break;
            case "hole":
                a = MmapAnon(mm, 0x4000, extra: MmapFlags.Populate);
                Assert.Equal(0, mm.Munmap(a + 0x1000, 0x1000));
                a += 0x1000;
                break;
            case "pfnmap":
                long r = mm.MmapOtherMmio(0, 0x4000, MemoryProtection.Read | MemoryProtection.Write, false, false, m.AllocateMmioPfns(4));
                Assert.True(r > 0);
                a = (ulong)r;
                break;
            case "dead-mm":
                a = MmapAnon(mm, 0x4000, extra: MmapFlags.Populate);
                p.Exit();
                break;
            case "pin-fault":
                a = MmapAnon(mm, 0x4000, extra: MmapFlags.Populate);
                m.Faults.Arm(1, FaultSite.Pin);
                break;
            case "alloc-fault":
                a = MmapAnon(mm, 0x4000);
                m.Faults.Arm(1, FaultSite.Alloc);
                break;
            default:
                throw new ArgumentException(setup);
        }
        return (m, mm, a);
    }

    // What a pin can change: the page's PTE, its frame's pins and references, the host's pin and free counts.
    private static string Describe(Machine m, AddressSpace mm, ulong vaddr)
    {
        string pte = "none";
        mm.MmapReadLock();
        try
        {
            if (mm.TryTranslateLocked(new HostVirtAddr(vaddr), out Pte p))
            {
                bool ram = p.Pfn.Value < m.Memory.FrameCount;
                pte = $"{p} pins {(ram ? m.Memory.PinCount(p.Pfn) : 0)} refs {(ram ? m.Memory.RefCount(p.Pfn) : 0)}";
            }
        }
        finally
        {
            mm.MmapReadUnlock();
        }
        return $"{pte}; pinned {m.Memory.PinnedFrameCount} total {m.Memory.TotalPins} free {m.Memory.FreeFrameCount} fired {m.Faults.Fired}";
    }
}
