using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Checks;

/// <summary>
/// The check after a MAP of shattered memory reading the IOMMU table's packed leaves a leaf at a time (issue 16:
/// RunMap.VisitPacked into the frame pass's TakePacked, and MarkPacked once the frames go into a bitmap of every host
/// frame): a clean MAP of thousands of one-page runs is read in place and found clean, one with the zero frame among
/// them found clean; a translation with another protection, a hole, or a frame outside RAM, at a page before the switch to the
/// bitmap, after it, or at the mapping's last page, is reported by the check after the call as by the full sweep.
/// </summary>
public sealed class InvariantCheckerPackedPassTests
{
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong Iova = 0x2000000;
    private const int Pages = 5000;   // past the 4096 runs kept before the frames go into the bitmap

    [Fact]
    public void CleanMapOfOnePageRuns_IsReadInPlaceAndClean()
    {
        (Type1TestHost t, _, InvariantChecker checker) = ScatteredMapped(Pages);
        Assert.Empty(checker.CheckChanges());
        Assert.True(checker.LastWasIncremental);
        Assert.True(checker.LastWasInPlace, "a clean MAP of one-page runs is read in place");
        Assert.Empty(new InvariantChecker(t.Host).Check());
    }

    // Under linux-6.1 a read-only MAP hands type1 the shared zero frame for a never-touched page: not charged and holding
    // no pin, so the pass answers "suspect" and the window is read again through the snapshot; either way no violation.
    [Theory]
    [InlineData(10)]      // among the runs kept before the switch to the bitmap
    [InlineData(4500)]    // among those marked in it
    [InlineData(Pages - 1)]
    public void ZeroFrameAmongOnePageRuns_IsFoundClean(int untouched)
    {
        var t = new Type1TestHost(memory: 64 * MiB, layout: FrameLayout.ScatteredRuns(1, 5), kernel: new KernelSettings(KernelSettings.Linux61, []));
        (int c, _) = t.Container();
        var checker = new InvariantChecker(t.Host);
        Assert.Empty(checker.Check());
        ulong size = (ulong)Pages * 0x1000;
        ulong va = t.MmapAnonymous(size);
        for (int p = 0; p < Pages; p++)
        {
            if (p != untouched)
            {
                Assert.Equal(0, t.Sys.WriteMemory(va + ((ulong)p * 0x1000), [1]));
            }
        }
        Assert.Empty(checker.CheckChanges());
        Assert.Equal(0, t.Map(c, Iova, va, size, DmaMapFlags.Read));
        t.Machine.Changes.EndCall();
        Assert.Equal(t.Machine.Memory.ZeroFrame!.Value.ToPhys(12), t.DomainOf(Type1TestHost.GpuGroup)!.IovaToPhys(new Iova(Iova + ((ulong)untouched * 0x1000))));
        Assert.Equal((ulong)Pages - 1, t.LockedVmPages);

        Assert.Empty(checker.CheckChanges());
        Assert.True(checker.LastWasIncremental);
        Assert.Empty(new InvariantChecker(t.Host).Check());
    }

    public static TheoryData<string, int> Breaks()
    {
        var data = new TheoryData<string, int>();
        foreach (string how in (string[])["protection", "hole", "outside-ram"])
        {
            foreach (int page in (int[])[100, 4500, Pages - 1])
            {
                data.Add(how, page);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Breaks))]
    public void BrokenTranslationAmongOnePageRuns_IsReportedAsByTheFullSweep(string how, int page)
    {
        (Type1TestHost t, _, InvariantChecker checker) = ScatteredMapped(Pages);
        IommuDomain domain = t.DomainOf(Type1TestHost.GpuGroup)!;
        var at = new Iova(Iova + ((ulong)page * 0x1000));
        PhysAddr phys = domain.IovaToPhys(at);
        Assert.Equal(0x1000UL, domain.Unmap(at, 0x1000));
        switch (how)
        {
            case "protection":
                Assert.Equal(Errno.None, domain.Map(at, phys, 0x1000, IommuProt.Read | IommuProt.Cache));
                break;
            case "outside-ram":
                Assert.Equal(Errno.None, domain.Map(at, new PhysAddr(t.Machine.Memory.FrameCount << 12), 0x1000, IommuProt.Read | IommuProt.Write | IommuProt.Cache));
                break;
            default:
                break;
        }

        IReadOnlyList<InvariantViolation> narrow = checker.CheckChanges();
        Assert.True(checker.LastWasIncremental);
        IReadOnlyList<InvariantViolation> full = new InvariantChecker(t.Host).Check();
        Assert.NotEmpty(full);
        Assert.Equal(InvariantCheckerIncrementalTests.Names(full), InvariantCheckerIncrementalTests.Names(narrow));
    }

    // On a 2 GiB host a bitmap of every frame has 8,192 words: a mapping of at least that many pages has its frames
    // marked from its 4,096th run on (before, from its 8,192nd), so an aliased page or an unpinned frame past the
    // 4,096th run is found in the bitmap, one before it among the runs kept; a clean one is read in place.
    [Theory]
    [InlineData("clean", 0)]
    [InlineData("aliased-page", 5000)]
    [InlineData("aliased-page", 9999)]
    [InlineData("aliased-page", 100)]
    [InlineData("unpinned-frame", 5000)]
    [InlineData("unpinned-frame", 100)]
    public void MappingWithAsManyPagesAsTheBitmapHasWords_IsMarkedEarlyWithTheSameFindings(string how, int page)
    {
        (Type1TestHost t, int c, InvariantChecker checker) = ScatteredMapped(10_000, 2048 * MiB);
        ulong at = Iova + ((ulong)page * 0x1000);
        if (how == "aliased-page")
        {
            t.Backend(c).TestHooks.AliasPageForTest(at, Iova + 0x1000);
        }
        else if (how == "unpinned-frame")
        {
            InvariantCheckerIncrementalTests.BreakAt(t, t.Backend(c), how, at);
        }

        IReadOnlyList<InvariantViolation> narrow = checker.CheckChanges();
        Assert.True(checker.LastWasIncremental);
        IReadOnlyList<InvariantViolation> full = new InvariantChecker(t.Host).Check();
        Assert.Equal(InvariantCheckerIncrementalTests.Names(full), InvariantCheckerIncrementalTests.Names(narrow));
        if (how == "clean")
        {
            Assert.Empty(narrow);
            Assert.True(checker.LastWasInPlace);
        }
        else
        {
            Assert.Contains(how == "aliased-page" ? "host-page-charged-once-per-mapping" : "translation-backed", InvariantCheckerIncrementalTests.Names(narrow));
        }
    }

    // A host (64 MiB unless told) with frames scattered in 1-page runs, a checker that found it clean, and a MAP of
    // `pages` populated pages at Iova (the call the next CheckChanges checks): one IOPTE run per page, in packed leaves.
    private static (Type1TestHost T, int Container, InvariantChecker Checker) ScatteredMapped(int pages, ulong memory = 64 * MiB)
    {
        var t = new Type1TestHost(memory: memory, layout: FrameLayout.ScatteredRuns(1, 5));
        (int c, _) = t.Container();
        var checker = new InvariantChecker(t.Host);
        Assert.Empty(checker.Check());
        ulong size = (ulong)pages * 0x1000;
        Assert.Equal(0, t.Map(c, Iova, t.MmapAnonymous(size, populate: true), size));
        t.Machine.Changes.EndCall();
        Assert.Equal(pages, t.DomainOf(Type1TestHost.GpuGroup)!.RunCount);
        return (t, c, checker);
    }
}
