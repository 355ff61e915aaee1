using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Simulation;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Quirks;

/// <summary>Quirk <c>unmap-owner-check</c> (v4.10-v5.19, 8f0d5bb95f76 until ffed0518d871): UNMAP stops, with
/// success, at the first mapping whose owner's current mm is not the caller's; today any holder of the
/// container fd unmaps (spec §3.12).</summary>
public sealed class UnmapOwnerCheckTests
{
    private const ulong MiB = Type1TestHost.MiB;

    private static readonly string[] Quirk = [KernelSettings.QuirkUnmapOwnerCheck];

    [Fact]
    public void UnmapDma_ByForkedChild_Today_RemovesParentsMapping()
    {
        Type1TestHost t = QuirkCalls.Host([]);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));

        (long ret, ulong size) = QuirkCalls.Unmap(child!, c, 0, 1 * MiB);

        Assert.Equal(0, ret);
        Assert.Equal(1 * MiB, size);
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Empty(QuirkCalls.Violations(t));
    }

    [Fact]
    public void UnmapDma_ByForkedChild_UnmapOwnerCheck_SucceedsWithSizeZeroAndKeepsMapping()
    {
        Type1TestHost t = QuirkCalls.Host(Quirk);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));

        (long ret, ulong size) = QuirkCalls.Unmap(child!, c, 0, 1 * MiB);

        // Never EPERM: success, with nothing unmapped.
        Assert.Equal(0, ret);
        Assert.Equal(0UL, size);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(256UL, t.LockedVmPages);
        Assert.Equal(256UL, t.TotalPins);
        Assert.Empty(QuirkCalls.Violations(t));
        // The owner still unmaps it.
        Assert.Equal((0L, 1 * MiB), t.Unmap(c, 0, 1 * MiB));
        Assert.Equal(0UL, t.LockedVmPages);
    }

    [Fact]
    public void UnmapDma_RangeOverOwnAndForeignMappings_UnmapOwnerCheck_StopsAtFirstForeign()
    {
        Type1TestHost t = QuirkCalls.Host(Quirk);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB);
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        // The child's mapping first, then the parent's, then the child's again.
        Assert.Equal(0, QuirkCalls.Map(child!, c, 0, buf, 1 * MiB));
        Assert.Equal(0, t.Map(c, 1 * MiB, buf, 1 * MiB));
        Assert.Equal(0, QuirkCalls.Map(child!, c, 2 * MiB, buf + (1 * MiB), 1 * MiB));

        (long ret, ulong size) = QuirkCalls.Unmap(child!, c, 0, 3 * MiB);

        Assert.Equal(0, ret);
        Assert.Equal(1 * MiB, size);
        Assert.Equal(2UL, t.Backend(c).MappingCount);
        Assert.Equal(256UL, child!.Mm!.LockedVm);
        Assert.Equal(256UL, t.LockedVmPages);
        Assert.Empty(QuirkCalls.Violations(t));
    }

    [Fact]
    public void UnmapDmaAll_ByForkedChild_UnmapOwnerCheck_StopsAtFirstForeign_TodayRemovesAll()
    {
        foreach (bool quirk in new[] { false, true })
        {
            Type1TestHost t = QuirkCalls.Host(quirk ? Quirk : []);
            (int c, _) = t.Container();
            ulong buf = t.MmapAnonymous(2 * MiB);
            Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
            Assert.Equal(0, QuirkCalls.Map(child!, c, 0, buf, 1 * MiB));
            Assert.Equal(0, t.Map(c, 1 * MiB, buf + (1 * MiB), 1 * MiB));

            (long ret, ulong size) = QuirkCalls.Unmap(child!, c, 0, 0, DmaUnmapFlags.All);

            Assert.Equal(0, ret);
            Assert.Equal(quirk ? 1 * MiB : 2 * MiB, size);
            Assert.Equal(quirk ? 1UL : 0UL, t.Backend(c).MappingCount);
            Assert.Equal(quirk ? 256UL : 0UL, t.LockedVmPages);
            Assert.Equal(0UL, child!.Mm!.LockedVm);
        }
    }

    [Fact]
    public void UnmapDma_OwnerExited_UnmapOwnerCheck_NobodyCanUnmap()
    {
        Type1TestHost t = QuirkCalls.Host(Quirk);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));
        VfioLab.Type1.VfioIommu backend = t.Backend(c);
        t.Process.Exit();

        // The owner task has no mm any more, so it matches no caller's.
        (long ret, ulong size) = QuirkCalls.Unmap(child!, c, 0, 1 * MiB);

        Assert.Equal(0, ret);
        Assert.Equal(0UL, size);
        Assert.Equal(1UL, backend.MappingCount);
        Assert.Equal(256UL, t.TotalPins);
    }

    [Fact]
    public void UnmapDmaVaddr_ByForkedChild_UnmapOwnerCheck_InvalidatesNothing()
    {
        Type1TestHost t = QuirkCalls.Host(Quirk);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(Errno.None, t.Process.TryFork(out Process? child));

        (long ret, ulong size) = QuirkCalls.Unmap(child!, c, 0, 1 * MiB, DmaUnmapFlags.Vaddr);

        Assert.Equal(0, ret);
        Assert.Equal(0UL, size);
        Assert.Equal(0, t.Backend(c).Snapshot().VaddrInvalidCount);
    }
}
