using VfioLab.Abi;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Mdev;

/// <summary>
/// Locked-memory accounting with external pins (spec §3.7, §3.10, §4.5, seed 004): a page is charged once per
/// mapping whoever pins it — by pin_pages only while the container has no IOMMU domain, by MAP or replay
/// otherwise, never by both — and the charge follows the domain coming and going.
/// </summary>
public sealed class ExternalAccountingTests
{
    private const ulong MiB = Type1TestHost.MiB;

    [Fact]
    public void Replay_PagesPinnedWithoutADomain_AreNotChargedAgain()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        Assert.Equal(8, m.Pin(0x100000, 8));
        Assert.Equal(8UL, m.T.LockedVmPages);

        m.T.AddGroup(m.Container, Type1TestHost.GpuGroup);

        // Every page is charged once: 8 by the external pins, 248 by the replay.
        Assert.Equal(256UL, m.T.LockedVmPages);
        Assert.Equal(256L, m.Mapping(0x100000).LockedVm);
        // Pinned twice where externally pinned: the IOMMU path's pin and the vfio_pfn's.
        Assert.Equal(256UL + 8, m.T.TotalPins);
        m.AssertClean();

        Assert.True(m.Unpin(0x100000, 8));
        Assert.Equal(256UL, m.T.LockedVmPages);
        Assert.Equal(256UL, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void DetachLastDomain_EmulatedGroupRemains_ReaccountsToTheExternalPins()
    {
        var m = new MdevTestHost(new Type1TestHost(), withGpu: true);
        m.Map(0x100000, 1 * MiB);
        m.Map(0x200000, 1 * MiB);
        Assert.Equal(3, m.Pin(0x100000, 3));
        Assert.Equal(512UL, m.T.LockedVmPages);

        Assert.Equal(0, m.T.UnsetContainer(m.GpuGroupFd));

        Assert.Equal(3UL, m.T.LockedVmPages);
        Assert.Equal(3L, m.Mapping(0x100000).LockedVm);
        Assert.Equal(0L, m.Mapping(0x200000).LockedVm);
        Assert.Equal(3UL, m.T.TotalPins);
        Assert.False(m.Mapping(0x100000).IommuMapped);
        m.AssertClean();

        // Attached again: the replay pins and charges every page but the three.
        Assert.Equal(0, m.T.SetContainer(m.GpuGroupFd, m.Container));
        Assert.Equal(512UL, m.T.LockedVmPages);
        Assert.Equal(515UL, m.T.TotalPins);
        m.AssertClean();

        Assert.Equal(0, m.T.Unmap(m.Container, 0, 0, DmaUnmapFlags.All).Ret);
        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(0UL, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void PinUnpin_NoDomain_ChargesFollowThePins()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);

        Assert.Equal(16, m.Pin(0x100000, 16));
        Assert.Equal(16UL, m.T.LockedVmPages);
        Assert.True(m.Unpin(0x104000, 4));
        Assert.Equal(12UL, m.T.LockedVmPages);
        Assert.Equal(12UL, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void PinPages_SameMemoryMappedTwice_ChargedOncePerMapping()
    {
        var m = new MdevTestHost(new Type1TestHost());
        ulong vaddr = m.T.MmapAnonymous(1 * MiB, populate: true);
        Assert.Equal(0, m.T.Map(m.Container, 0x100000, vaddr, 1 * MiB));
        Assert.Equal(0, m.T.Map(m.Container, 0x200000, vaddr, 1 * MiB));

        Assert.Equal(1, m.Pin(0x100000, 1, out Addressing.Pfn[] a));
        Assert.Equal(1, m.Pin(0x200000, 1, out Addressing.Pfn[] b));

        Assert.Equal(a[0], b[0]);
        Assert.Equal(2UL, m.T.LockedVmPages);
        Assert.Equal(2UL, m.T.Machine.Memory.PinCount(a[0]));
        m.AssertClean();
    }

    [Fact]
    public void UnmapDma_ExternallyPinnedWithDomain_UnchargesEveryPageOnce()
    {
        var m = new MdevTestHost(new Type1TestHost(), withGpu: true);
        m.Map(0x100000, 1 * MiB);
        Assert.Equal(10, m.Pin(0x100000, 10));

        Assert.Equal(0, m.T.Unmap(m.Container, 0x100000, 1 * MiB).Ret);

        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(0UL, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void CloseGroupAndContainer_AfterPins_NothingLeft()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        Assert.Equal(5, m.Pin(0x100000, 5));

        Assert.Equal(0, m.T.Sys.Close(m.DeviceFd));
        Assert.Equal(0, m.T.Sys.Close(m.MdevGroupFd));
        Assert.Equal(0, m.T.Sys.Close(m.Container));

        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(0UL, m.T.TotalPins);
        m.AssertClean();
    }
}
