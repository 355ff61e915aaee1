using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Robustness;

/// <summary>The state digest sees every piece of observable VFIO state, ignores nothing a failed call must
/// keep, returns to the same value when the state does, and costs lines per run, not per page.</summary>
public sealed class StateDigestTests
{
    private static readonly IommuHardwareProfile Other4K2M =
        IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, null, null, null, false);

    [Fact]
    public void Of_SameBuildOnTwoHosts_IsEqual()
    {
        StateDigest a = StateDigest.Of(Built().Host);
        StateDigest b = StateDigest.Of(Built().Host);
        Assert.Equal(a, b);
        Assert.Null(b.FirstDifference(a));
    }

    [Fact]
    public void Of_MapThenUnmap_ReturnsToTheDigestBefore()
    {
        Type1TestHost t = Built(out int c);
        ulong buf = t.MmapAnonymous(2 * Type1TestHost.MiB);
        StateDigest before = StateDigest.Of(t.Host);
        Assert.Equal(0, t.Map(c, 0x100000, buf, 2 * Type1TestHost.MiB));
        StateDigest mapped = StateDigest.Of(t.Host);
        Assert.NotEqual(before, mapped);
        Assert.Contains(mapped.Lines, l => l.Contains("dma [0x100000, 0x2fffff]", StringComparison.Ordinal));
        Assert.Contains(mapped.Lines, l => l.StartsWith("pins ", StringComparison.Ordinal));
        Assert.Equal((0L, 2 * Type1TestHost.MiB), t.Unmap(c, 0x100000, 2 * Type1TestHost.MiB));
        StateDigest after = StateDigest.Of(t.Host);
        Assert.True(after.Equals(before), after.FirstDifference(before));
    }

    [Fact]
    public void Of_EachKindOfChange_IsSeen()
    {
        Type1TestHost t = Built(out int c);
        ulong buf = t.MmapAnonymous(4 * Type1TestHost.MiB);
        Assert.Equal(0, t.Map(c, 0x100000, buf, 2 * Type1TestHost.MiB));
        var seen = new List<string>();
        StateDigest last = StateDigest.Of(t.Host);
        void Changed(string what)
        {
            StateDigest now = StateDigest.Of(t.Host);
            Assert.True(!now.Equals(last), $"{what}: the digest did not change");
            seen.Add(now.FirstDifference(last)!);
            last = now;
        }

        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        Changed("dirty tracking started");
        int other = t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        Changed("a second domain");
        Assert.Equal(0, t.Sys.Close(other));
        Changed("a non-pinned group detached while tracking (bitmaps all dirty)");
        t.Process.MemlockLimitBytes = 64 * Type1TestHost.MiB;
        Changed("RLIMIT_MEMLOCK");
        Assert.Equal(0, t.Map(c, 0x400000, buf + 2 * Type1TestHost.MiB, 2 * Type1TestHost.MiB, DmaMapFlags.Read));
        Changed("a read-only mapping");
        var frame = new VfioLab.Addressing.Pfn(t.DomainOf(Type1TestHost.GpuGroup)!.IovaToPhys(new VfioLab.Addressing.Iova(0x100000)).Value >> 12);
        t.Host.Machine.Memory.Pin(frame, 1);
        Changed("a frame's pin count");
        t.Host.Machine.Memory.Unpin(frame, 1);
        Changed("the pin dropped again");
        Assert.True(t.OpenContainer() >= 0);
        Changed("a new fd and container");
        t.Backend(c).TestHooks.AdjustDmaAvailForTest(-1);
        Changed("dma_avail");
        Assert.Equal(9, seen.Distinct().Count());
    }

    [Fact]
    public void Of_OneGiBGuestOnHugePages_HasLinesPerRunNotPerPage()
    {
        var t = new Type1TestHost(memory: 4 * Type1TestHost.GiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapHuge(2 * Type1TestHost.GiB, MmapFlags.Huge1GiB);
        Assert.Equal(0, t.Map(c, Type1TestHost.GiB, buf, 2 * Type1TestHost.GiB));
        StateDigest d = StateDigest.Of(t.Host);
        Assert.InRange(d.Lines.Count, 5, 40);
        Assert.Contains(d.Lines, l => l.Contains("0x40000000 ReadWrite", StringComparison.Ordinal) || l.Contains("0x40000000 Read", StringComparison.Ordinal));
    }

    [Fact]
    public void Of_StandardStreamClosedThenDuplicatedBack_SeesTheCloseAndReturnsToTheDigestBefore()
    {
        Type1TestHost t = Built();
        StateDigest before = StateDigest.Of(t.Host);
        Assert.Contains(before.Lines, l => l == "  fd 0 /dev/null NullFile");
        Assert.Contains(before.Lines, l => l == "  fd 2 /dev/null NullFile");

        Assert.Equal(0, t.Sys.Close(1));
        StateDigest closed = StateDigest.Of(t.Host);
        Assert.Equal("line 2: before '  fd 1 /dev/null NullFile', after '  fd 2 /dev/null NullFile'", closed.FirstDifference(before));
        Assert.Equal(1, t.Process.Syscalls.Dup(0));
        StateDigest after = StateDigest.Of(t.Host);

        Assert.True(after.Equals(before), after.FirstDifference(before));
    }

    // A container with the GPU's group, SET_IOMMU done, the other-IOMMU group available.
    private static Type1TestHost Built() => Built(out _);

    private static Type1TestHost Built(out int container)
    {
        var t = new Type1TestHost(otherIommu: Other4K2M);
        (container, _) = t.Container();
        return t;
    }
}
