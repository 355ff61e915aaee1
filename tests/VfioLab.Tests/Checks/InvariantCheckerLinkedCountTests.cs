using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Client;
using VfioLab.Host;
using VfioLab.Lab;
using VfioLab.Tests.Type1;
using VfioLab.Type1;

namespace VfioLab.Tests.Checks;

/// <summary>
/// A MAP_DMA that linked its mapping is counted under its container's lock (Type1Context.DeclareLinked) instead of
/// recorded in the change journal under its gate, and a check takes the journal without its gate when nothing was
/// recorded there (issue 16, branch checks4). The check after a call is narrow only when exactly one call ended since
/// the last check and exactly one declaration was made, in the journal or by a link; anything else is the full sweep.
/// </summary>
public sealed class InvariantCheckerLinkedCountTests
{
    private const ulong Page = 0x1000;
    private const ulong Iova = 0x1000_0000;

    [Fact]
    public void OneLinkedMapPerCall_IsNarrow_AnythingElseSweeps()
    {
        var t = new Type1TestHost(memory: 64 * Type1TestHost.MiB);
        (int c, _) = t.Container();
        ulong buffer = t.MmapAnonymous(16 * Page, populate: true);
        var checker = new InvariantChecker(t.Host);
        Assert.Empty(checker.Check());
        Assert.Empty(checker.CheckChanges());   // nothing ended since: the full sweep
        Assert.False(checker.LastWasIncremental);

        Assert.Equal(0, t.Map(c, Iova, buffer, Page));
        t.Machine.Changes.EndCall();
        Assert.Empty(checker.CheckChanges());
        Assert.True(checker.LastWasIncremental);
        Assert.Equal(1, checker.TrustedHandOverChecks);

        // Two MAPs that linked, one call ended (the other still under way): two declarations for one call.
        Assert.Equal(0, t.Map(c, Iova + (2 * Page), buffer + Page, Page));
        Assert.Equal(0, t.Map(c, Iova + (4 * Page), buffer + (2 * Page), Page));
        t.Machine.Changes.EndCall();
        Assert.Empty(checker.CheckChanges());
        Assert.False(checker.LastWasIncremental);
        // The second one's end: a call that declared nothing since (its link was taken by the sweep).
        t.Machine.Changes.EndCall();
        Assert.Empty(checker.CheckChanges());
        Assert.False(checker.LastWasIncremental);

        // A MAP that linked and a call that declared a range: two calls.
        Assert.Equal(0, t.Map(c, Iova + (6 * Page), buffer + (3 * Page), Page));
        t.Machine.Changes.EndCall();
        Assert.Equal(0, t.Unmap(c, Iova, Page).Ret);
        t.Machine.Changes.EndCall();
        Assert.Empty(checker.CheckChanges());
        Assert.False(checker.LastWasIncremental);

        // A MAP that linked, and a call that declared nothing: two calls.
        Assert.Equal(0, t.Map(c, Iova + (8 * Page), buffer + (4 * Page), Page));
        t.Machine.Changes.EndCall();
        t.Machine.Changes.EndCall();
        Assert.Empty(checker.CheckChanges());
        Assert.False(checker.LastWasIncremental);

        // A MAP that linked but whose call has not ended, then a lab entry point that is not a call: wide.
        Assert.Equal(0, t.Map(c, Iova + (10 * Page), buffer + (5 * Page), Page));
        t.Machine.Changes.MarkWide();
        t.Machine.Changes.EndCall();
        Assert.Empty(checker.CheckChanges());
        Assert.False(checker.LastWasIncremental);

        // And back: one MAP, one call, from the hand-over again.
        Assert.Equal(0, t.Map(c, Iova + (12 * Page), buffer + (6 * Page), Page));
        t.Machine.Changes.EndCall();
        Assert.Empty(checker.CheckChanges());
        Assert.True(checker.LastWasIncremental);
        Assert.Equal(2, checker.TrustedHandOverChecks);
    }

    [Fact]
    public void LinkedMap_TheHandOverUnproved_IsReadInPlaceFromTheMappingOfItsCount()
    {
        var t = new Type1TestHost(memory: 64 * Type1TestHost.MiB);
        (int c, _) = t.Container();
        VfioIommu backend = t.Backend(c);
        ulong buffer = t.MmapAnonymous(16 * Page, populate: true);
        var checker = new InvariantChecker(t.Host);
        Assert.Empty(checker.Check());
        Assert.Equal(0, t.Map(c, Iova, buffer, Page));
        t.Machine.Changes.EndCall();
        using (backend.CheckLock.EnterScope())
        {
            // The container's lock taken after the hand-over: its counts prove nothing any more.
        }
        Assert.Empty(checker.CheckChanges());
        Assert.True(checker.LastWasIncremental);
        Assert.Equal(0, checker.TrustedHandOverChecks);
        Assert.Equal(1, checker.HandedOverChecks);

        // The mapping of a count is handed out only while no later MAP has linked another.
        int count = backend.LinkedCountForCheck;
        Assert.Equal(Iova, backend.LinkedForCheck(count)!.Range.Start);
        Assert.Equal(0, t.Map(c, Iova + (2 * Page), buffer + Page, Page));
        Assert.Null(backend.LinkedForCheck(count));
        Assert.Equal(Iova + (2 * Page), backend.LinkedForCheck(count + 1)!.Range.Start);
    }

    [Fact]
    public void LinkedMap_StateBrokenAfterTheCall_IsFoundWithTheSweepsMessage()
    {
        var t = new Type1TestHost(memory: 64 * Type1TestHost.MiB);
        (int c, _) = t.Container();
        ulong buffer = t.MmapAnonymous(16 * Page, populate: true);
        var checker = new InvariantChecker(t.Host);
        Assert.Empty(checker.Check());
        Assert.Equal(0, t.Map(c, Iova, buffer, Page));
        t.Machine.Changes.EndCall();
        // A pin leaked on the new mapping's frame, under host memory's lock: the hand-over cannot be proved, and the
        // check reads the MAP's mapping (found from its count) in place, then through the windowed snapshot.
        InvariantCheckerIncrementalTests.BreakAt(t, t.Backend(c), "pin-leaked", Iova);

        IReadOnlyList<InvariantViolation> found = checker.CheckChanges();
        Assert.True(checker.LastWasIncremental);
        var sweep = new InvariantChecker(t.Host);
        Assert.Equal(InvariantCheckerIncrementalTests.Describe(sweep.Check()), InvariantCheckerIncrementalTests.Describe(found));
        Assert.NotEmpty(found);
    }

    [Fact]
    public void Journal_TakenWithoutItsGate_KeepsWhatIsRecordedAfter()
    {
        var journal = new ChangeJournal();
        var ranges = new List<(int, ulong, ulong)>();
        Assert.False(journal.TryTakeRecord(ranges, out _));   // wide until the first take
        journal.EndCall();
        Assert.True(journal.TryTakeRecord(ranges, out int calls));   // nothing recorded: without the gate
        Assert.Equal(1, calls);
        Assert.Empty(ranges);

        journal.DeclareType1(3, 0x1000, 0x1fff);
        journal.EndCall();
        Assert.True(journal.TryTakeNarrow(ranges));
        Assert.Equal([(3, 0x1000UL, 0x1fffUL)], ranges);

        Assert.True(journal.TryTakeRecord(ranges, out calls));
        Assert.Equal(0, calls);
        journal.MarkWide();
        journal.EndCall();
        Assert.False(journal.TryTakeRecord(ranges, out _));   // a MarkWide after a take without the gate stays
        Assert.True(journal.TryTakeRecord(ranges, out calls));
        Assert.Equal(0, calls);

        // Two calls, each with its range: both are handed out (the checker's narrow check needs exactly one).
        ranges.Clear();
        journal.DeclareType1(3, 0x1000, 0x1fff);
        journal.EndCall();
        journal.DeclareType1(3, 0x3000, 0x3fff);
        journal.EndCall();
        Assert.True(journal.TryTakeNarrow(ranges));
        Assert.Equal([(3, 0x1000UL, 0x1fffUL), (3, 0x3000UL, 0x3fffUL)], ranges);
    }

    [Fact]
    public void ChecksWhileTwoThreadsMapAndUnmap_LeaveTheCheckerSound()
    {
        // Two processes, each with its own container, mapping and unmapping one page at a time on their own threads,
        // each checking after its own calls. A check is meant for a quiescent host (Checks/README.md): one made while
        // the other thread's call is under way may see that call half done, and what it reports then is not asserted.
        // What is: nothing throws, counts of links and calls taken while the other thread's call was under way make a
        // later check the full sweep, never a narrow check of the wrong call, and once the threads are done the
        // incremental checks find what the full sweep finds (nothing), call after call.
        const int Steps = 400;
        LabHost host = new LabHostBuilder().WithMemory(256UL << 20)
            .AddPciDevice("a", "0000:01:00.0", d => d.Group(1))
            .AddPciDevice("b", "0000:02:00.0", d => d.Group(2))
            .Build();
        (Container, ulong)[] sides = new (Container, ulong)[2];
        for (int i = 0; i < 2; i++)
        {
            LabProcess p = host.Spawn($"vmm{i}", LabHostBuilder.Unlimited);
            ulong vaddr = (ulong)p.Syscalls.Mmap(0, (Steps + 1) * Page, MemoryProtection.Read | MemoryProtection.Write,
                MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate, -1, 0);
            Container container = Container.Open(p.Syscalls);
            Group.Open(p.Syscalls, i + 1).SetContainer(container);
            container.SetIommu(VfioExtension.Type1v2Iommu);
            sides[i] = (container, vaddr);
        }
        Assert.Empty(host.CheckInvariants());
        using var start = new Barrier(2);
        Exception?[] failed = new Exception?[2];
        Thread[] threads = new Thread[2];
        for (int i = 0; i < 2; i++)
        {
            int side = i;
            threads[i] = new Thread(() =>
            {
                try
                {
                    (Container container, ulong vaddr) = sides[side];
                    start.SignalAndWait();
                    for (ulong s = 0; s < Steps; s++)
                    {
                        container.MapDma(Iova + (s * Page), vaddr + (s * Page), Page);
                        host.CheckChangedInvariants();
                    }
                    for (ulong s = 0; s < Steps; s += 2)
                    {
                        container.UnmapDma(Iova + (s * Page), Page);
                        host.CheckChangedInvariants();
                    }
                }
                catch (Exception e)
                {
                    failed[side] = e;
                }
            });
            threads[i].Start();
        }
        foreach (Thread th in threads)
        {
            th.Join();
        }
        Assert.True(failed[0] is null, failed[0]?.ToString());
        Assert.True(failed[1] is null, failed[1]?.ToString());
        Assert.Empty(host.CheckChangedInvariants());
        Assert.Empty(host.CheckChangedInvariants());
        long incremental = host.Checker.IncrementalChecks;
        for (int i = 0; i < 2; i++)
        {
            (Container container, ulong vaddr) = sides[i];
            for (ulong s = 0; s < Steps; s += 2)
            {
                container.MapDma(Iova + (s * Page), vaddr + (s * Page), Page);
                Assert.Empty(host.CheckChangedInvariants());
                Assert.True(host.Checker.LastWasIncremental);
            }
        }
        Assert.Equal(incremental + Steps, host.Checker.IncrementalChecks);
        Assert.Empty(host.CheckInvariants());
    }
}
