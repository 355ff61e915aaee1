using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Lab;
using VfioLab.Tests.Type1;
using VfioLab.Type1;

namespace VfioLab.Tests.Checks;

/// <summary>
/// The incremental check (issue 16) against the full sweep: from a consistent host, a MAP_DMA or UNMAP_DMA that
/// leaves a broken state where it worked is reported with the same invariants by both, through the narrow path;
/// a seeded random sequence compares the two after every call and breaks the state at random on the way; every
/// call that is not a declared MAP/UNMAP, and every lab entry point that is not a system call, makes the next check
/// the full sweep.
/// </summary>
public sealed class InvariantCheckerIncrementalTests
{
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong Anon = 0x100000;        // 4 MiB anonymous, populated
    private const ulong Alias = 0x1000000;      // the same 4 MiB again
    private const ulong Small = 0x2000000;      // 64 KiB, mapped by the call under test
    private const ulong Huge = 0x4000_0000;     // 4 MiB of 2 MiB hugetlb pages

    private static readonly IommuHardwareProfile OtherIommu =
        IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, null, null, null, false);

    public static TheoryData<string> Breaks() =>
    [
        "tree-range", "dma-avail", "stray-entry", "not-iommu-mapped", "unpinned-frame", "dma-locked-vm", "mm-locked-vm",
        "aliased-page", "pending-invalidation", "vpfn-zero-ref", "vaddr-invalid-count", "bitmap-dropped",
        "non-pinned-groups", "iova-window", "pin-leaked",
    ];

    [Theory]
    [MemberData(nameof(Breaks))]
    public void MapLeavesBrokenState_IncrementalReportsWhatFullSweepReports(string how)
    {
        Fixture f = Clean();
        var incremental = new InvariantChecker(f.T.Host);
        Assert.Empty(incremental.Check());

        Assert.Equal(0, f.T.Map(f.Container, Small, f.T.MmapAnonymous(64 * 1024), 64 * 1024));
        f.T.Machine.Changes.EndCall();
        Break(f, how, Small);

        IReadOnlyList<InvariantViolation> narrow = incremental.CheckChanges();
        Assert.True(incremental.LastWasIncremental, "the MAP was declared: the check should have been incremental");
        IReadOnlyList<InvariantViolation> full = new InvariantChecker(f.T.Host).Check();
        Assert.NotEmpty(full);
        Assert.Equal(Names(full), Names(narrow));
    }

    [Theory]
    [InlineData("dma-avail")]
    [InlineData("mm-locked-vm")]
    [InlineData("pin-leaked")]
    [InlineData("stray-entry")]
    public void UnmapLeavesBrokenState_IncrementalReportsWhatFullSweepReports(string how)
    {
        Fixture f = Clean();
        Assert.Equal(0, f.T.Map(f.Container, Small, f.T.MmapAnonymous(64 * 1024), 64 * 1024));
        var incremental = new InvariantChecker(f.T.Host);
        Assert.Empty(incremental.Check());

        Assert.Equal(0, f.T.Unmap(f.Container, Small, 64 * 1024).Ret);
        f.T.Machine.Changes.EndCall();
        // The counters and totals the UNMAP moves, or a translation left where the unmapped mapping was (the stray
        // entry lands in the gap after it, inside the window: the range and the gaps up to the neighbours).
        if (how == "stray-entry")
        {
            VfioIommu b = f.Backend;
            Assert.Equal(Errno.None, b.TestHooks.MapStrayEntryForTest(1, Small + 0x10000, b.Snapshot().Domains[0].Domain.IovaToPhys(new Iova(Anon)), 0x1000));
        }
        else
        {
            Break(f, how, Small);
        }

        IReadOnlyList<InvariantViolation> narrow = incremental.CheckChanges();
        Assert.True(incremental.LastWasIncremental);
        IReadOnlyList<InvariantViolation> full = new InvariantChecker(f.T.Host).Check();
        Assert.NotEmpty(full);
        Assert.Equal(Names(full), Names(narrow));
    }

    [Theory]
    [InlineData("unpinned-frame", "translation-backed")]
    [InlineData("aliased-page", "host-page-charged-once-per-mapping")]
    public void DamageInsideANeighbourOfTheChangedRange_IsLeftToTheFullSweep(string how, string invariant)
    {
        // The narrow window is the range the call changed, the mappings overlapping it and the gaps beside it, up to the
        // neighbouring mappings; the neighbours themselves are not read again (issue 16: a check of O(changed)). Damage
        // inside a neighbour that moves no total (a frame unpinned while a spare is pinned, a page aliased) is the full
        // sweep's to find; damage that moves a total (pins, charges, counts) is found at once (the theory above).
        Fixture f = Clean();
        Assert.Equal(0, f.T.Map(f.Container, Small, f.T.MmapAnonymous(64 * 1024), 64 * 1024));
        var incremental = new InvariantChecker(f.T.Host);
        Assert.Empty(incremental.Check());

        Assert.Equal(0, f.T.Unmap(f.Container, Alias, 4 * MiB).Ret);
        f.T.Machine.Changes.EndCall();
        Break(f, how, Small);   // Small is the next mapping after the unmapped range

        Assert.Empty(incremental.CheckChanges());
        Assert.True(incremental.LastWasIncremental);
        Assert.Equal([invariant], Names(incremental.Check()));
    }

    [Theory]
    [InlineData(256, -1)]     // 256 one-page runs over a 64 MiB host: a bitmap of the frames they span
    [InlineData(256, 255)]
    [InlineData(16, -1)]      // 16 runs spread over 16,384 frames: sorted instead
    [InlineData(16, 15)]
    [InlineData(5000, -1)]    // past 4096 runs: marked in a bitmap of every host frame as they come
    [InlineData(5000, 4999)]  // the second reach marked after the switch
    [InlineData(5000, 100)]   // both reaches kept before it
    public void ScatteredMapping_AFrameReachedTwice_IsFoundByTheCheckAfterTheCallAndTheSweep(int pages, int aliasAt)
    {
        // host-page-charged-once-per-mapping over frames in no order (scattered in 1-page runs): the check tests the
        // mapping's runs against a bitmap of the frames they span, by sorting them, or, for many runs, in a bitmap of
        // every host frame (issue 16); each must find a page aliased onto the mapping's first, and none may report a
        // clean mapping.
        (Type1TestHost t, int c, InvariantChecker checker) = ScatteredMapped(pages);
        bool alias = aliasAt >= 0;
        if (alias)
        {
            t.Backend(c).TestHooks.AliasPageForTest(Small + ((ulong)aliasAt * 0x1000), Small);
        }

        IReadOnlyList<InvariantViolation> narrow = checker.CheckChanges();
        Assert.True(checker.LastWasIncremental);
        string[] expected = alias ? ["host-page-charged-once-per-mapping"] : [];
        Assert.Equal(expected, Names(narrow).Where(n => n == "host-page-charged-once-per-mapping"));
        Assert.Equal(expected, Names(new InvariantChecker(t.Host).Check()).Where(n => n == "host-page-charged-once-per-mapping"));
    }

    [Theory]
    [InlineData(5000, 4999)]  // past 4096 runs: the frames marked in a bitmap, their pins read from it in frame order
    [InlineData(5000, 100)]   // a run kept before the switch (tested run by run, and in the bitmap)
    [InlineData(256, 100)]    // few runs: tested run by run
    public void ScatteredMapping_AFrameUnpinnedBehindTheBackend_IsFoundByTheCheckAfterTheCallAndTheSweep(int pages, int unpinAt)
    {
        // translation-backed over frames in no order: a mapping of many one-page runs has its frames' pins read from the
        // bitmap it marks for host-page-charged-once, window by window in frame order (issue 16), not one lookup per run;
        // a frame unpinned behind the backend (a spare pin keeps the totals) must still be found by the check after the
        // MAP, with the sweep's invariants.
        (Type1TestHost t, int c, InvariantChecker checker) = ScatteredMapped(pages);
        BreakAt(t, t.Backend(c), "unpinned-frame", Small + ((ulong)unpinAt * 0x1000));

        IReadOnlyList<InvariantViolation> narrow = checker.CheckChanges();
        Assert.True(checker.LastWasIncremental);
        IReadOnlyList<InvariantViolation> full = new InvariantChecker(t.Host).Check();
        Assert.Contains("translation-backed", Names(full));
        Assert.Equal(Names(full), Names(narrow));
    }

    [Theory]
    [InlineData(Alias, Alias + (4 * MiB) - 1, Anon + (4 * MiB), Huge - 1)]               // a mapping: the gaps up to its neighbours
    [InlineData(Alias + 0x1000, Alias + 0x1fff, Anon + (4 * MiB), Huge - 1)]             // inside it: the whole mapping
    [InlineData(0x2000000UL, 0x2000fffUL, Alias + (4 * MiB), Huge - 1)]                  // a gap
    [InlineData(0UL, 0xfffUL, 0UL, Anon - 1)]                                            // before the first mapping
    [InlineData(Anon + 0x1000, Alias + 0x1000, 0UL, Huge - 1)]                           // across two mappings
    [InlineData(Huge, Huge + (4 * MiB) - 1, Alias + (4 * MiB), ulong.MaxValue)]          // the last mapping
    public void TheNarrowWindow_IsTheRangeItsMappingsAndTheGapsUpToTheNeighbours(ulong start, ulong last, ulong from, ulong to)
    {
        Fixture f = Clean();
        using (f.Backend.CheckLock.EnterScope())
        {
            Assert.Equal(new ByteRange(from, to), f.Backend.TreeForCheck.CheckGapWindowLocked(start, last));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void HandedOverMapping_ItsWindowThroughTheLinks_IsTheWindowTheTreeSearchFinds(int seed)
    {
        // The check after a linked MAP finds the mapping's window by walking up from the mapping MAP handed over
        // (DmaTree.TryLinkedWindowForCheckLocked) instead of searching: for every mapping of a tree built in random
        // order it must be the gap window the searches find; a mapping no longer linked, or a tree a test hook claimed,
        // must be refused (the check then searches as before).
        Fixture f = Clean();
        var rng = new Random(seed);
        ulong buffer = f.T.MmapAnonymous(1 * MiB, populate: true);
        foreach (int slot in Enumerable.Range(0, 200).OrderBy(_ => rng.Next()).Take(120))
        {
            Assert.Equal(0, f.T.Map(f.Container, 0x8000_0000UL + ((ulong)slot * 0x20000), buffer + ((ulong)rng.Next(16) * 0x10000), 0x10000));
        }
        List<VfioDma> all;
        DmaTree tree = f.Backend.TreeForCheck;
        using (f.Backend.CheckLock.EnterScope())
        {
            all = tree.AllLocked();
            Assert.Equal(123, all.Count);
            foreach (VfioDma d in all)
            {
                Assert.True(tree.TryLinkedWindowForCheckLocked(d, out ByteRange w), $"{d} is linked");
                Assert.Equal(tree.CheckGapWindowLocked(d.Range.Start, d.Last), w);
            }
        }
        VfioDma gone = all[all.Count / 2];
        Assert.Equal(0, f.T.Unmap(f.Container, gone.Range.Start, gone.RequestedSize).Ret);
        using (f.Backend.CheckLock.EnterScope())
        {
            Assert.False(tree.TryLinkedWindowForCheckLocked(gone, out _), "an unmapped mapping is not linked");
        }
        VfioDma kept = all[1];
        f.Backend.TestHooks.ClaimTreeRangeForTest(Huge, Huge + 0xfff, Alias);
        using (f.Backend.CheckLock.EnterScope())
        {
            Assert.False(tree.TryLinkedWindowForCheckLocked(kept, out _), "after a claim the run map beside the tree is what is read");
        }
    }

    [Fact]
    public void MapThatLinked_IsCheckedWithoutAReadingBeforeTheCall_AndOtherMapsAreNot()
    {
        // A MAP that links its mapping counts its link (Type1Context.DeclareLinked): its range held no mapping before (the
        // link's overlap test), so the checker read nothing before the call. Whatever is done to the state between
        // the call and the check is read where it is after the call (MapLeavesBrokenState_... above breaks it there);
        // what the claim cannot cover is a MAP that removed a mapping from its own range before linking, which no MAP
        // path does: the count and dma_avail checks of the narrow window and the final sweep would report it.
        Fixture f = Clean();
        var incremental = new InvariantChecker(f.T.Host);
        Assert.Empty(incremental.Check());

        ulong buffer = f.T.MmapAnonymous(64 * 1024);
        f.T.Machine.Changes.EndCall();
        Assert.Empty(incremental.Check());
        Assert.Equal(0, f.T.Map(f.Container, Small, buffer, 64 * 1024));
        f.T.Machine.Changes.EndCall();
        Assert.Empty(incremental.CheckChanges());
        Assert.True(incremental.LastWasIncremental);
        Assert.True(incremental.LastWasInPlace);
        Assert.Equal(1, incremental.HandedOverChecks);   // found through the tree's links, from the mapping MAP handed over

        // A MAP refused (EEXIST) linked nothing and was observed by nobody: the next check is the full sweep.
        Assert.Equal((int)Errno.EEXIST, -f.T.Map(f.Container, Small, buffer, 64 * 1024));
        f.T.Machine.Changes.EndCall();
        Assert.Empty(incremental.CheckChanges());
        Assert.False(incremental.LastWasIncremental);
    }

    [Fact]
    public void CleanCalls_IncrementalReportsNothingAndTheNextStaysIncremental()
    {
        Fixture f = Clean();
        var incremental = new InvariantChecker(f.T.Host);
        Assert.Empty(incremental.Check());
        Assert.False(incremental.LastWasIncremental);
        ulong buffer = f.T.MmapAnonymous(1 * MiB, populate: true);
        f.T.Machine.Changes.EndCall();
        Assert.Empty(incremental.CheckChanges());
        Assert.False(incremental.LastWasIncremental);   // mmap declared nothing: the full sweep

        for (ulong i = 0; i < 16; i++)
        {
            Assert.Equal(0, f.T.Map(f.Container, Small + (i * 0x10000), buffer + (i * 0x10000), 0x10000));
            f.T.Machine.Changes.EndCall();
            Assert.Empty(incremental.CheckChanges());
            Assert.True(incremental.LastWasIncremental);
            Assert.True(incremental.LastWasInPlace, "a clean MAP (two domains of different page sizes, dirty tracking) is read in place");
        }
        Assert.Equal(0, f.T.Unmap(f.Container, Small, 16 * 0x10000).Ret);
        f.T.Machine.Changes.EndCall();
        Assert.Empty(incremental.CheckChanges());
        Assert.True(incremental.LastWasIncremental);
        Assert.True(incremental.LastWasInPlace);
    }

    [Fact]
    public void DamageOutsideWhatTheCallChanged_IsLeftToTheFullSweep()
    {
        // The contract, stated by a test: the incremental check looks at what the call declared; damage done
        // elsewhere by something that is not a call (a test hook here) is found by the full sweep at the end.
        Fixture f = Clean();
        var incremental = new InvariantChecker(f.T.Host);
        Assert.Empty(incremental.Check());
        Assert.Equal(0, f.T.Map(f.Container, Small, f.T.MmapAnonymous(64 * 1024), 64 * 1024));
        f.T.Machine.Changes.EndCall();
        f.Backend.TestHooks.AdjustDmaLockedVmForTest(Anon, -1);

        Assert.Empty(incremental.CheckChanges());
        Assert.True(incremental.LastWasIncremental);
        Assert.Equal(["locked-vm-matches-charges"], Names(incremental.Check()));
    }

    [Theory]
    [InlineData("pgsize-bitmap", "pgsize-bitmap")]
    [InlineData("group-listed-twice", "group-attached-once")]
    public void DamageToWhatMapNeverChanges_IsLeftToTheFullSweep(string how, string invariant)
    {
        // Groups, reserved regions and pgsize_bitmap are not what a MAP changes: the incremental check does not
        // look at them; the full sweep does.
        Fixture f = Clean();
        var incremental = new InvariantChecker(f.T.Host);
        Assert.Empty(incremental.Check());
        Assert.Equal(0, f.T.Map(f.Container, Small, f.T.MmapAnonymous(64 * 1024), 64 * 1024));
        f.T.Machine.Changes.EndCall();
        if (how == "pgsize-bitmap")
        {
            Break(f, how, Small);
        }
        else
        {
            f.Backend.TestHooks.ListAsEmulatedForTest(f.T.Host.Vfio.Groups.First(g => g.Container is not null));
        }

        Assert.Empty(incremental.CheckChanges());
        Assert.True(incremental.LastWasIncremental);
        Assert.Contains(invariant, Names(incremental.Check()));
    }

    [Fact]
    public void UncheckedCalls_KeepTheJournalBounded_AndTheNextCheckIsFull()
    {
        Fixture f = Clean();
        ulong buffer = f.T.MmapAnonymous(1 * MiB, populate: true);
        int pairs = ChangeJournal.MaxRanges * 4;

        // Nobody has checked yet: the journal starts wide and records nothing.
        for (int i = 0; i < pairs; i++)
        {
            Assert.Equal(0, f.T.Map(f.Container, Small, buffer, 0x10000));
            f.T.Machine.Changes.EndCall();
            Assert.Equal(0, f.T.Unmap(f.Container, Small, 0x10000).Ret);
            f.T.Machine.Changes.EndCall();
        }
        Assert.Equal(0, f.T.Machine.Changes.RangeCount);

        // After a check it records, up to its bound; past it the next check is the full sweep.
        var incremental = new InvariantChecker(f.T.Host);
        Assert.Empty(incremental.Check());
        for (int i = 0; i < pairs; i++)
        {
            Assert.Equal(0, f.T.Map(f.Container, Small, buffer, 0x10000));
            f.T.Machine.Changes.EndCall();
            Assert.Equal(0, f.T.Unmap(f.Container, Small, 0x10000).Ret);
            f.T.Machine.Changes.EndCall();
            Assert.InRange(f.T.Machine.Changes.RangeCount, 0, ChangeJournal.MaxRanges);
        }
        f.Backend.TestHooks.AdjustDmaLockedVmForTest(Anon, -1);
        Assert.Equal(["locked-vm-matches-charges"], Names(incremental.CheckChanges()));
        Assert.False(incremental.LastWasIncremental);
    }

    [Fact]
    public void CallDeclaringNothing_MakesTheNextCheckFull()
    {
        Fixture f = Clean();
        var incremental = new InvariantChecker(f.T.Host);
        Assert.Empty(incremental.Check());
        Assert.Equal(0, f.T.Map(f.Container, Small, f.T.MmapAnonymous(64 * 1024), 64 * 1024));
        f.T.Machine.Changes.EndCall();
        Assert.Equal(0, f.T.Dirty(f.Container, DirtyPagesFlags.Stop));
        f.T.Machine.Changes.EndCall();
        f.Backend.TestHooks.AdjustDmaLockedVmForTest(Anon, -1);

        Assert.Equal(["locked-vm-matches-charges"], Names(incremental.CheckChanges()));
        Assert.False(incremental.LastWasIncremental);
    }

    [Fact]
    public void AfterAViolation_ChecksStayFullUntilTheStateIsConsistent()
    {
        Fixture f = Clean();
        var incremental = new InvariantChecker(f.T.Host);
        Assert.Empty(incremental.Check());
        f.Backend.TestHooks.AdjustDmaLockedVmForTest(Anon, -1);
        Assert.Equal(["locked-vm-matches-charges"], Names(incremental.Check()));

        Assert.Equal(0, f.T.Map(f.Container, Small, f.T.MmapAnonymous(64 * 1024), 64 * 1024));
        f.T.Machine.Changes.EndCall();
        Assert.Equal(["locked-vm-matches-charges"], Names(incremental.CheckChanges()));
        Assert.False(incremental.LastWasIncremental);
        f.Backend.TestHooks.AdjustDmaLockedVmForTest(Anon, +1);
        Assert.Empty(incremental.Check());

        Assert.Equal(0, f.T.Unmap(f.Container, Small, 64 * 1024).Ret);
        f.T.Machine.Changes.EndCall();
        Assert.Empty(incremental.CheckChanges());
        Assert.True(incremental.LastWasIncremental);
    }

    [Fact]
    public void LabEntryPointsThatAreNotSystemCalls_MakeTheNextCheckFull()
    {
        LabHost host = new LabHostBuilder().WithMemory(64 * MiB).AddPciDevice("gpu", "0000:01:00.0", d => d.Group(1)).Build();
        ChangeJournal journal = host.Simulated.Machine.Changes;
        var ranges = new List<(int, ulong, ulong)>();
        Assert.False(journal.TryTakeNarrow(ranges));   // nothing recorded yet: full
        journal.DeclareType1(1, 0, 0xfff);
        journal.EndCall();
        Assert.True(journal.TryTakeNarrow(ranges));
        Assert.Equal([(1, 0UL, 0xfffUL)], ranges);

        Action[] wideners =
        [
            () => host.RunDeferredWork(),
            () => host.Spawn("other"),
            () => host.Process("other").MemlockLimitBytes = 1 * MiB,
            () => host.Process("other").Exit(),
            () => host.Device("gpu").Release(),
        ];
        foreach (Action widen in wideners)
        {
            journal.DeclareType1(1, 0, 0xfff);
            journal.EndCall();
            widen();
            ranges.Clear();
            Assert.False(journal.TryTakeNarrow(ranges));
        }
        LabProcess vmm = host.Spawn("vmm");
        ranges.Clear();
        journal.TryTakeNarrow(ranges);
        Assert.True(vmm.Syscalls.Open("/dev/vfio/vfio") >= 0);   // a system call that declared nothing
        Assert.False(journal.TryTakeNarrow(ranges));
    }

    public static TheoryData<int> Seeds() => [1, 2, 3, 4, 5, 6, 7, 8];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomCalls_IncrementalAgreesWithFullSweepAfterEveryCall(int seed)
    {
        var rng = new Random(seed);
        (Type1TestHost t, int c, int nic, int other, ulong[] buffers, VfioIommu backend) = RandomCallsHost();
        bool nicIn = false;
        bool otherIn = false;
        var incremental = new InvariantChecker(t.Host);
        Assert.Empty(incremental.Check());
        var log = new List<string>();
        int narrow = 0;
        int broken = -1;
        for (int step = 0; step < 300 && broken < 0; step++)
        {
            ulong slot = (ulong)rng.Next(32) * 0x100000;
            ulong size = (ulong)(1 << rng.Next(4)) * 0x10000;
            int op = rng.Next(40);
            if (op == 0)
            {
                t.Machine.Faults.Arm(rng.Next(1, 3), FaultSite.Named(rng.Next(2) == 0 ? "pin" : "iommu_map"));
            }
            string what = op switch
            {
                <= 22 => $"map 0x{slot:x} 0x{size:x}: {t.Map(c, slot, buffers[rng.Next(buffers.Length)] + ((ulong)rng.Next(4) * 0x200000), size)}",
                <= 35 => $"unmap 0x{slot:x} 0x{size:x}: {t.Unmap(c, slot, size).Ret}",
                36 => $"unmap all: {t.Unmap(c, 0, 0, DmaUnmapFlags.All).Ret}",
                37 => $"nic {(nicIn ? "out" : "in")}: {Toggle(nic, ref nicIn)}",
                38 => $"other {(otherIn ? "out" : "in")}: {Toggle(other, ref otherIn)}",
                _ => $"dirty: {t.Dirty(c, backend.Snapshot().DirtyTracking ? DirtyPagesFlags.Stop : DirtyPagesFlags.Start)}",
            };
            t.Machine.Faults.Arm(0);
            t.Machine.Changes.EndCall();
            log.Add(what);
            // Now and then the call is taken to have broken what it touched.
            VfioDmaSnapshot? touched = op <= 35 ? backend.Snapshot().Mappings.FirstOrDefault(m => m.Last >= slot && m.Iova <= slot + size) : null;
            if (touched is not null && step >= 200 && rng.Next(25) == 0)
            {
                string how = RandomBreaks[rng.Next(RandomBreaks.Length)];
                BreakAt(t, backend, how, touched.Iova);
                log.Add($"break {how} at 0x{touched.Iova:x}");
                broken = step;
            }
            IReadOnlyList<InvariantViolation> found = incremental.CheckChanges();
            narrow += incremental.LastWasIncremental ? 1 : 0;
            IReadOnlyList<InvariantViolation> full = new InvariantChecker(t.Host).Check();
            Assert.True(Names(full).SequenceEqual(Names(found)),
                $"seed {seed} step {step}:\n{string.Join("\n", log.TakeLast(8))}\n-- full:\n{Describe(full)}\n-- incremental:\n{Describe(found)}");
            Assert.True(broken >= 0 || full.Count == 0, $"seed {seed} step {step}: {Describe(full)}");
        }
        Assert.True(narrow > 80, $"seed {seed}: only {narrow} incremental checks");

        long Toggle(int fd, ref bool inside)
        {
            long r = inside ? t.UnsetContainer(fd) : t.SetContainer(fd, c);
            inside ^= r == 0;
            return r;
        }
    }

    public static TheoryData<int> CorruptionSeeds() => [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22];

    [Theory]
    [MemberData(nameof(CorruptionSeeds))]
    public void RandomCallsWithInjectedCorruptions_IncrementalPlusFinalSweepFindTheSameAsAFullSweepAfterEveryCall(int seed)
    {
        // Episodes on fresh hosts: random calls, each checked by the incremental check and by a full sweep, and now and
        // then a call taken to have corrupted what it touched (the mapping it made or removed next to, or the
        // container's counters and the host's totals). From the corruption on both keep reporting it; each episode
        // ends with the full sweep. Every step must give the same invariants by name.
        var rng = new Random(seed);
        int corrupted = 0;
        int inPlace = 0;
        for (int episode = 0; episode < 6; episode++)
        {
            (Type1TestHost t, int c, int nic, int other, ulong[] buffers, VfioIommu backend) = RandomCallsHost();
            bool nicIn = false;
            bool otherIn = false;
            var incremental = new InvariantChecker(t.Host);
            Assert.Empty(incremental.CheckChanges());
            int breakAt = rng.Next(20, 80);
            string? broken = null;
            var log = new List<string>();
            for (int step = 0; step < 100; step++)
            {
                ulong slot = (ulong)rng.Next(32) * 0x100000;
                ulong size = (ulong)(1 << rng.Next(4)) * 0x10000;
                int op = rng.Next(40);
                string what = op switch
                {
                    <= 24 => $"map 0x{slot:x} 0x{size:x}: {t.Map(c, slot, buffers[rng.Next(buffers.Length)] + ((ulong)rng.Next(4) * 0x200000), size)}",
                    <= 36 => $"unmap 0x{slot:x} 0x{size:x}: {t.Unmap(c, slot, size).Ret}",
                    37 => $"nic {(nicIn ? "out" : "in")}: {Toggle(nic, ref nicIn)}",
                    38 => $"other {(otherIn ? "out" : "in")}: {Toggle(other, ref otherIn)}",
                    _ => $"dirty: {t.Dirty(c, backend.Snapshot().DirtyTracking ? DirtyPagesFlags.Stop : DirtyPagesFlags.Start)}",
                };
                t.Machine.Changes.EndCall();
                log.Add(what);
                VfioDmaSnapshot? touched = op <= 36 ? backend.Snapshot().Mappings.FirstOrDefault(m => m.Last >= slot && m.Iova <= slot + size) : null;
                if (broken is null && step >= breakAt && touched is not null)
                {
                    string how = InjectedBreaks[rng.Next(InjectedBreaks.Length)];
                    if (TryInject(t, c, backend, how, touched, slot + size - 1))
                    {
                        broken = how;
                        corrupted++;
                        log.Add($"break {how} at 0x{touched.Iova:x}");
                    }
                }
                IReadOnlyList<InvariantViolation> found = incremental.CheckChanges();
                inPlace += incremental.LastWasInPlace ? 1 : 0;
                IReadOnlyList<InvariantViolation> full = new InvariantChecker(t.Host).Check();
                Assert.True(Names(full).SequenceEqual(Names(found)),
                    $"seed {seed} episode {episode} step {step}:\n{string.Join("\n", log.TakeLast(8))}\n-- full:\n{Describe(full)}\n-- incremental:\n{Describe(found)}");
                Assert.True(broken is not null || full.Count == 0, $"seed {seed} episode {episode} step {step}: {Describe(full)}");
                if (broken == "unpinned-frame")
                {
                    // A frame unpinned behind the backend, with a spare pin keeping the totals, can be hidden from every
                    // invariant by a later MAP of the same page (its pin stands in for the lost one) and brought back by
                    // unmapping that other mapping, outside what the UNMAP changed: a state the invariants cannot tell
                    // from a consistent one is not one the incremental check starts from. (Unmapping the damaged
                    // mapping would also unpin a frame holding no pin, which the model refuses as a caller bug.)
                    break;
                }
            }
            Assert.Equal(Names(new InvariantChecker(t.Host).Check()), Names(incremental.Check()));

            long Toggle(int fd, ref bool inside)
            {
                long r = inside ? t.UnsetContainer(fd) : t.SetContainer(fd, c);
                inside ^= r == 0;
                return r;
            }
        }
        Assert.True(corrupted >= 3, $"seed {seed}: only {corrupted} corruption(s) injected");
        Assert.True(inPlace > 100, $"seed {seed}: only {inPlace} checks read in place");
    }

    // Corruptions a MAP or UNMAP could leave in what it touched, each through a test hook. Not here: an aliased page
    // and a zero-ref external pin, whose later unmap unpins frames other mappings hold (damage spread by calls outside
    // what they change, from a state already broken); the tests above take each of them after one call.
    private static readonly string[] InjectedBreaks =
    [
        "dma-avail", "not-iommu-mapped", "unpinned-frame", "dma-locked-vm", "mm-locked-vm", "pin-leaked", "vaddr-invalid-count", "stray-entry",
        "pending-invalidation", "bitmap-dropped", "non-pinned-groups", "iova-window",
    ];

    // Applies one corruption at the touched mapping; false where it does not apply there (no domain to corrupt, a mapping
    // too small to alias a page in, a stray entry's place already taken).
    private static bool TryInject(Type1TestHost t, int container, VfioIommu b, string how, VfioDmaSnapshot m, ulong declaredLast)
    {
        bool domains = b.Snapshot().Domains.Count > 0;
        switch (how)
        {
            case "stray-entry":
                // Right after the mapping, inside what the call's window takes in (the gap up to the next mapping
                // after the declared range): not past a mapping that reaches beyond that range.
                if (!domains || m.Last > declaredLast || b.Snapshot().Mappings.Any(x => x.Range.Overlaps(new ByteRange(m.Last + 1, m.Last + 0x1000))))
                {
                    return false;
                }
                return b.TestHooks.MapStrayEntryForTest(0, m.Last + 1, b.Snapshot().Domains[0].Domain.IovaToPhys(new Iova(m.Iova)), 0x1000) == Errno.None;
            case "aliased-page":
                if (!domains || m.RequestedSize < 0x2000)
                {
                    return false;
                }
                b.TestHooks.AliasPageForTest(m.Iova + 0x1000, m.Iova);
                return true;
            case "pending-invalidation":
            case "vpfn-zero-ref":
                if (!domains)
                {
                    return false;
                }
                break;
            case "iova-window":
                if (m.Iova == 0)
                {
                    return false;
                }
                break;
            default:
                break;
        }
        if (how is "dma-avail" or "not-iommu-mapped" or "unpinned-frame" or "dma-locked-vm" or "mm-locked-vm" or "pin-leaked" or "vaddr-invalid-count")
        {
            BreakAt(t, b, how, m.Iova);
        }
        else
        {
            Break(new Fixture(t, container, b), how, m.Iova);
        }
        return true;
    }

    private static readonly string[] RandomBreaks = ["dma-avail", "not-iommu-mapped", "unpinned-frame", "dma-locked-vm", "mm-locked-vm", "pin-leaked", "vaddr-invalid-count"];

    private static void Break(Fixture f, string how, ulong iova)
    {
        VfioIommu b = f.Backend;
        switch (how)
        {
            case "tree-range":
                b.TestHooks.ClaimTreeRangeForTest(iova + 0xf000, iova + 0xffff, Alias);
                break;
            case "stray-entry":
                Assert.Equal(Errno.None, b.TestHooks.MapStrayEntryForTest(1, iova + 0x10000, b.Snapshot().Domains[0].Domain.IovaToPhys(new Iova(iova)), 0x1000));
                break;
            case "aliased-page":
                b.TestHooks.AliasPageForTest(iova + 0x1000, iova);
                break;
            case "pending-invalidation":
                b.TestHooks.LeavePendingInvalidationForTest(iova);
                break;
            case "vpfn-zero-ref":
                b.TestHooks.SetVpfnForTest(iova, Pfn.FromPhys(b.Snapshot().Domains[0].Domain.IovaToPhys(new Iova(iova)), 12), refCount: 0);
                break;
            case "bitmap-dropped":
                b.TestHooks.DropBitmapForTest(iova);
                break;
            case "non-pinned-groups":
                b.TestHooks.SetNumNonPinnedGroupsForTest(5);
                break;
            case "iova-window":
                b.TestHooks.SetIovaListForTest([new ByteRange(0, iova - 1)]);
                break;
            case "pgsize-bitmap":
                b.TestHooks.SetPgsizeBitmapForTest(PageSizeBitmap.Size4K | (1UL << 11));
                break;
            default:
                BreakAt(f.T, b, how, iova);
                break;
        }
    }

    // The breaks the random sequence uses: each through a hook on the mapping at iova (or the container's counters).
    internal static void BreakAt(Type1TestHost t, VfioIommu b, string how, ulong iova)
    {
        switch (how)
        {
            case "dma-avail":
                b.TestHooks.AdjustDmaAvailForTest(+1);
                break;
            case "not-iommu-mapped":
                b.TestHooks.SetIommuMappedForTest(iova, !b.Snapshot().Mappings.First(m => m.Iova == iova).IommuMapped);
                break;
            case "unpinned-frame":
                if (b.Snapshot().Domains.Count == 0)
                {
                    goto case "dma-locked-vm";
                }
                b.TestHooks.UnpinBehindBackendForTest(iova);
                Assert.True(t.Machine.Memory.TryAllocateRun(1, out PfnRun spare));
                t.Machine.Memory.Pin(spare.First, 1);
                break;
            case "dma-locked-vm":
                b.TestHooks.AdjustDmaLockedVmForTest(iova, -1);
                break;
            case "mm-locked-vm":
                AddressSpace mm = t.Process.Mm!;
                mm.MmapWriteLock();
                mm.AddLockedVmLocked(1, ulong.MaxValue);
                mm.MmapWriteUnlock();
                break;
            case "pin-leaked":
                Assert.True(t.Machine.Memory.TryAllocateRun(1, out PfnRun leaked));
                t.Machine.Memory.Pin(leaked.First, 1);
                break;
            case "vaddr-invalid-count":
                b.TestHooks.SetVaddrInvalidCountForTest(3);
                break;
            default:
                throw new ArgumentException($"unknown break {how}", nameof(how));
        }
    }

    internal static string[] Names(IReadOnlyList<InvariantViolation> found) => [.. found.Select(v => v.Invariant).Distinct().Order(StringComparer.Ordinal)];

    internal static string Describe(IReadOnlyList<InvariantViolation> found) => string.Join("\n", found.Select(v => $"{v.Invariant}: {v.Message}"));

    // Two domains (the host IOMMU for the GPU and NIC, a second IOMMU with 4K|2M for group 3), three mappings,
    // dirty tracking on; no device memory mapped (a container holding devices is always swept whole).
    // A 64 MiB host with frames scattered in 1-page runs, a checker that found it clean, and a MAP of `pages` populated
    // pages at Small (the call the next CheckChanges checks).
    private static (Type1TestHost T, int Container, InvariantChecker Checker) ScatteredMapped(int pages)
    {
        var t = new Type1TestHost(memory: 64 * MiB, layout: FrameLayout.ScatteredRuns(1, 5));
        (int c, _) = t.Container();
        var checker = new InvariantChecker(t.Host);
        Assert.Empty(checker.Check());
        ulong size = (ulong)pages * 0x1000;
        Assert.Equal(0, t.Map(c, Small, t.MmapAnonymous(size, populate: true), size));
        t.Machine.Changes.EndCall();
        return (t, c, checker);
    }

    private static Fixture Clean()
    {
        var t = new Type1TestHost(memory: 512 * MiB, otherIommu: OtherIommu, memlock: 256 * MiB);
        (int c, _) = t.Container();
        t.AddGroup(c, Type1TestHost.NicGroup);
        t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        ulong anon = t.MmapAnonymous(4 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, Anon, anon, 4 * MiB));
        Assert.Equal(0, t.Map(c, Alias, anon, 4 * MiB));
        Assert.Equal(0, t.Map(c, Huge, t.MmapHuge(4 * MiB, MmapFlags.Huge2MiB), 4 * MiB));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        return new Fixture(t, c, t.Backend(c));
    }

    private sealed record Fixture(Type1TestHost T, int Container, VfioIommu Backend);

    // The host the random-call tests drive: one container, the NIC's and the other IOMMU's groups open (not yet in
    // it), and three 8 MiB buffers (populated, lazy, 2 MiB huge pages).
    private static (Type1TestHost T, int Container, int Nic, int Other, ulong[] Buffers, VfioIommu Backend) RandomCallsHost()
    {
        var t = new Type1TestHost(memory: 512 * MiB, memlock: 24 * MiB, otherIommu: OtherIommu);
        (int c, _) = t.Container();
        int nic = t.OpenGroup(Type1TestHost.NicGroup);
        int other = t.OpenGroup(Type1TestHost.OtherIommuGroup);
        ulong[] buffers = [t.MmapAnonymous(8 * MiB, populate: true), t.MmapAnonymous(8 * MiB), t.MmapHuge(8 * MiB, MmapFlags.Huge2MiB)];
        return (t, c, nic, other, buffers, t.Backend(c));
    }
}
