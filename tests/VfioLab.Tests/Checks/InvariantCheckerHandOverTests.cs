using System.Reflection;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Tests.Type1;
using VfioLab.Type1;

namespace VfioLab.Tests.Checks;

/// <summary>
/// The check after a one-page MAP_DMA from what the MAP handed over (issue 16, Checks/InvariantChecker.HandOver.cs):
/// when no lock guarding the container, its page table or host memory was taken between the last check and the MAP,
/// nor after the MAP's hand-over, the page table and pin are not read again. Any write by anything else, before or after
/// the call, takes one of those locks and the check reads the call in place as before, with the full sweep's findings;
/// a write that takes no lock at all (simulated here by taking a count back) and the MAP's own writing are the full
/// sweep's to find, with the full sweep's messages.
/// </summary>
public sealed class InvariantCheckerHandOverTests
{
    private const ulong Page = 0x1000;
    private const ulong Iova = 0x1000_0000;     // the one-page MAP under test
    private const ulong Other = 0x2000_0000;    // 64 KiB mapped before the first check

    [Fact]
    public void OnePageMaps_AreCheckedFromTheHandOver_LargerOnesInPlace()
    {
        Fixture f = OneDomain();
        var checker = new InvariantChecker(f.T.Host);
        Assert.Empty(checker.Check());
        ulong buffer = f.T.MmapAnonymous(16 * Page, populate: true);
        f.T.Machine.Changes.MarkWide();
        Assert.Empty(checker.CheckChanges());   // the mmap: the full sweep
        for (ulong i = 0; i < 8; i++)
        {
            Assert.Equal(0, f.T.Map(f.Container, Iova + (2 * i * Page), buffer + (i * Page), Page));
            f.T.Machine.Changes.EndCall();
            Assert.Empty(checker.CheckChanges());
            Assert.True(checker.LastWasIncremental);
        }
        Assert.Equal(8, checker.TrustedHandOverChecks);

        // Two pages: their frames could alias, and reading them is proportional to what the MAP did: read in place.
        Assert.Equal(0, f.T.Map(f.Container, Iova + (32 * Page), buffer + (8 * Page), 2 * Page));
        f.T.Machine.Changes.EndCall();
        Assert.Empty(checker.CheckChanges());
        Assert.Equal(8, checker.TrustedHandOverChecks);
        Assert.Equal(1, checker.HandedOverChecks);
        Assert.Empty(checker.Check());
    }

    public static TheoryData<string> Breaks() =>
    [
        "stray-entry", "stray-entry-page-table-only", "unpinned-frame", "unpinned-frame-memory-only", "dma-locked-vm", "mm-locked-vm", "pin-leaked", "dma-avail", "not-iommu-mapped",
        "pending-invalidation", "vaddr-invalid-count", "iova-window", "non-pinned-groups",
    ];

    [Theory]
    [MemberData(nameof(Breaks))]
    public void BrokenAfterTheCall_TheCheckReportsWhatTheFullSweepReports(string how)
    {
        Fixture f = OneDomain();
        var checker = new InvariantChecker(f.T.Host);
        Assert.Empty(checker.Check());

        Assert.Equal(0, f.T.Map(f.Container, Iova, f.Buffer, Page));
        f.T.Machine.Changes.EndCall();
        Break(f, how);

        IReadOnlyList<InvariantViolation> narrow = checker.CheckChanges();
        Assert.True(checker.LastWasIncremental);
        IReadOnlyList<InvariantViolation> full = new InvariantChecker(f.T.Host).Check();
        Assert.NotEmpty(full);
        Assert.Equal(Names(full), Names(narrow));
    }

    [Theory]
    [InlineData("stray-entry")]        // a translation in the gap the MAP then lands beside
    [InlineData("stray-entry-page-table-only")]
    [InlineData("unpinned-frame")]     // a frame of another mapping unpinned, a spare pinned: no total moves
    [InlineData("dma-avail")]
    [InlineData("pin-leaked")]
    public void BrokenBeforeTheCall_TheCheckReadsTheCallAgain(string how)
    {
        // A write between the last check and the MAP took a lock the MAP's start counts: the hand-over is not used, and
        // the check finds what the reading in place finds.
        Fixture f = OneDomain();
        var checker = new InvariantChecker(f.T.Host);
        Assert.Empty(checker.Check());
        Fixture twin = OneDomain();
        var twinChecker = new InvariantChecker(twin.T.Host);
        Assert.Empty(twinChecker.Check());

        Break(f, how, unpinAt: Other);
        Assert.Equal(0, f.T.Map(f.Container, Iova, f.Buffer, Page));
        f.T.Machine.Changes.EndCall();
        IReadOnlyList<InvariantViolation> narrow = checker.CheckChanges();
        Assert.True(checker.LastWasIncremental);
        Assert.Equal(0, checker.TrustedHandOverChecks);

        // The same damage after the MAP, on a twin host: the same findings.
        Assert.Equal(0, twin.T.Map(twin.Container, Iova, twin.Buffer, Page));
        twin.T.Machine.Changes.EndCall();
        Break(twin, how, unpinAt: Other);
        Assert.Equal(Describe(twinChecker.CheckChanges()), Describe(narrow));
        if (how == "unpinned-frame")
        {
            // Inside another mapping, outside the window: the full sweep's, as for any narrow check.
            Assert.Empty(narrow);
            Assert.Equal(["translation-backed"], Names(checker.Check()));
        }
        else
        {
            Assert.NotEmpty(narrow);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AWriterThatTakesNoLock_IsTheFullSweepsToFind_WithTheSameMessage(bool afterTheCall)
    {
        // A stray translation written beside the new mapping by a writer that bumps no count (simulated: the hook's
        // entries are taken back). The check cannot see it, as it cannot see the MAP's own writing; the full sweep at
        // the end reports it exactly as the check reports it when the write took its locks (the twin host).
        Fixture f = OneDomain();
        var checker = new InvariantChecker(f.T.Host);
        Assert.Empty(checker.Check());
        if (!afterTheCall)
        {
            Unbumped(f, () => Break(f, "stray-entry"));
        }
        Assert.Equal(0, f.T.Map(f.Container, Iova, f.Buffer, Page));
        f.T.Machine.Changes.EndCall();
        if (afterTheCall)
        {
            Unbumped(f, () => Break(f, "stray-entry"));
        }
        Assert.Empty(checker.CheckChanges());
        Assert.Equal(1, checker.TrustedHandOverChecks);
        IReadOnlyList<InvariantViolation> sweep = checker.Check();

        Fixture twin = OneDomain();
        var twinChecker = new InvariantChecker(twin.T.Host);
        Assert.Empty(twinChecker.Check());
        Assert.Equal(0, twin.T.Map(twin.Container, Iova, twin.Buffer, Page));
        twin.T.Machine.Changes.EndCall();
        Break(twin, "stray-entry");
        IReadOnlyList<InvariantViolation> reported = twinChecker.CheckChanges();
        Assert.Equal(0, twinChecker.TrustedHandOverChecks);
        Assert.Equal(["domains-agree"], Names(reported));
        Assert.Equal(Describe(reported), Describe(sweep));
    }

    [Fact]
    public void TheCountsAfterAFoundViolation_AreTakenAgainByTheSweep()
    {
        // After a check that found something the next is the full sweep, which records the counts again: once the
        // damage is repaired, one-page MAPs are checked from their hand-over again.
        Fixture f = OnePageMappedAfterASweep(out InvariantChecker checker);
        f.Backend.TestHooks.AdjustDmaAvailForTest(+1);
        Assert.Equal(["dma-avail-conserved"], Names(checker.CheckChanges()));
        f.Backend.TestHooks.AdjustDmaAvailForTest(-1);
        f.T.Machine.Changes.MarkWide();
        Assert.Empty(checker.CheckChanges());
        Assert.Equal(0, f.T.Map(f.Container, Iova + (2 * Page), f.Buffer + Page, Page));
        f.T.Machine.Changes.EndCall();
        Assert.Empty(checker.CheckChanges());
        Assert.Equal(1, checker.TrustedHandOverChecks);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AViolationTheHandOverFinds_MakesTheNextCheckTheFullSweep(bool repaired)
    {
        // The hand-over check keeps the running totals where they are while it moves them (no reference store per
        // check, issue 16) and lets go of them when it finds anything: the mm's locked_vm raised behind the backend
        // (the mmap lock, which the hand-over counts do not watch) is found from the hand-over, and the check after the
        // next one-page MAP is the full sweep, whether or not the damage was repaired meanwhile.
        Fixture f = OnePageMappedAfterASweep(out InvariantChecker checker);
        Break(f, "mm-locked-vm");
        Assert.Equal(["locked-vm-matches-charges"], Names(checker.CheckChanges()));
        Assert.True(checker.LastWasIncremental);
        Assert.Equal(1, checker.TrustedHandOverChecks);
        if (repaired)
        {
            AddressSpace mm = f.T.Process.Mm!;
            mm.MmapWriteLock();
            mm.AddLockedVmLocked(-1, ulong.MaxValue);
            mm.MmapWriteUnlock();
        }

        Assert.Equal(0, f.T.Map(f.Container, Iova + (2 * Page), f.Buffer + Page, Page));
        f.T.Machine.Changes.EndCall();
        IReadOnlyList<InvariantViolation> next = checker.CheckChanges();
        Assert.False(checker.LastWasIncremental);
        Assert.Equal(1, checker.TrustedHandOverChecks);
        Assert.Equal(repaired ? [] : ["locked-vm-matches-charges"], Names(next));
        Assert.Equal(Names(new InvariantChecker(f.T.Host).Check()), Names(next));
    }

    private static void Break(Fixture f, string how, ulong? unpinAt = null)
    {
        VfioIommu b = f.Backend;
        // Looked up only where used: the lookup takes the page table's lock, which the memory-only break must not.
        PhysAddr OtherPhys() => f.T.DomainOf(Type1TestHost.GpuGroup)!.IovaToPhys(new Iova(Other));
        switch (how)
        {
            case "stray-entry":
                Assert.Equal(Errno.None, b.TestHooks.MapStrayEntryForTest(0, Iova + Page, OtherPhys(), Page));
                break;
            case "stray-entry-page-table-only":
                // Through the page table alone: only its lock is taken.
                Assert.Equal(Errno.None, f.T.DomainOf(Type1TestHost.GpuGroup)!.Map(new Iova(Iova + Page), OtherPhys(), Page, IommuProt.Read | IommuProt.Write | IommuProt.Cache));
                break;
            case "unpinned-frame-memory-only":
                // Through host memory alone: the new mapping's frame unpinned, a spare pinned (no total moves).
                // (The frame is looked up in the page table, whose lock that takes: a read, so its entry is taken back.)
                OrderedLock.Gate table = GateOf(DomainLock(f));
                int entries = table.Entries;
                Pfn frame = Pfn.FromPhys(f.T.DomainOf(Type1TestHost.GpuGroup)!.IovaToPhys(new Iova(Iova)), 12);
                table.Entries = entries;
                f.T.Machine.Memory.Unpin(frame, 1);
                Assert.True(f.T.Machine.Memory.TryAllocateRun(1, out PfnRun other));
                f.T.Machine.Memory.Pin(other.First, 1);
                break;
            case "unpinned-frame":
                // The new mapping's frame once it is mapped, another mapping's before.
                b.TestHooks.UnpinBehindBackendForTest(unpinAt ?? (b.Snapshot().Mappings.Any(m => m.Iova == Iova) ? Iova : Other));
                Assert.True(f.T.Machine.Memory.TryAllocateRun(1, out PfnRun spare));
                f.T.Machine.Memory.Pin(spare.First, 1);
                break;
            case "not-iommu-mapped":
                b.TestHooks.SetIommuMappedForTest(Iova, false);
                break;
            case "pending-invalidation":
                b.TestHooks.LeavePendingInvalidationForTest(Iova);
                break;
            case "iova-window":
                b.TestHooks.SetIovaListForTest([new ByteRange(0, Iova - 1)]);
                break;
            case "non-pinned-groups":
                b.TestHooks.SetNumNonPinnedGroupsForTest(5);
                break;
            default:
                // The breaks the incremental tests also make (charges, counters, a leaked pin), on the new mapping.
                InvariantCheckerIncrementalTests.BreakAt(f.T, b, how, Iova);
                break;
        }
    }

    // Runs a write, then takes back the lock entries it made on the container's, its domain's and host memory's locks:
    // a writer that bumps no count.
    private static void Unbumped(Fixture f, Action write)
    {
        OrderedLock.Gate[] gates =
        [
            GateOf(f.Backend.CheckLock),
            GateOf(DomainLock(f)),
            GateOf((OrderedLock)typeof(PhysicalMemory).GetField("_gate", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(f.T.Machine.Memory)!),
        ];
        int[] before = [.. gates.Select(g => g.Entries)];
        write();
        for (int i = 0; i < gates.Length; i++)
        {
            gates[i].Entries = before[i];
        }
    }

    private static OrderedLock DomainLock(Fixture f) =>
        (OrderedLock)typeof(IommuDomain).GetField("_lock", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(f.T.DomainOf(Type1TestHost.GpuGroup))!;

    private static OrderedLock.Gate GateOf(OrderedLock l) =>
        (OrderedLock.Gate)typeof(OrderedLock).GetField("_gate", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(l)!;

    private static string[] Names(IReadOnlyList<InvariantViolation> found) => InvariantCheckerIncrementalTests.Names(found);

    private static string Describe(IReadOnlyList<InvariantViolation> found) => InvariantCheckerIncrementalTests.Describe(found);

    // One domain, a clean full sweep, then one one-page MAP at Iova whose call has ended: what a hand-over check reads.
    private static Fixture OnePageMappedAfterASweep(out InvariantChecker checker)
    {
        Fixture f = OneDomain();
        checker = new InvariantChecker(f.T.Host);
        Assert.Empty(checker.Check());
        Assert.Equal(0, f.T.Map(f.Container, Iova, f.Buffer, Page));
        f.T.Machine.Changes.EndCall();
        return f;
    }

    // One container with the GPU's group (one IOMMU domain), 64 KiB mapped at Other, and a populated buffer for the
    // one-page MAPs under test.
    private static Fixture OneDomain()
    {
        var t = new Type1TestHost(memory: 64 * Type1TestHost.MiB);
        (int c, _) = t.Container();
        Assert.Equal(0, t.Map(c, Other, t.MmapAnonymous(64 * 1024, populate: true), 64 * 1024));
        return new Fixture(t, c, t.Backend(c), t.MmapAnonymous(16 * Page, populate: true));
    }

    private sealed record Fixture(Type1TestHost T, int Container, VfioIommu Backend, ulong Buffer);
}
