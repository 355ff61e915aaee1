using VfioLab.Abi;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Mdev;

/// <summary>
/// vfio_unpin_pages (spec §1.8, §3.7): void in the kernel; it warns on misuse and then does nothing (device not
/// open, npage outside 1..512, a v1 container) or stops at the first page outside every mapping. Pages without an
/// external pin are skipped silently.
/// </summary>
public sealed class UnpinPagesTests
{
    private const ulong MiB = Type1TestHost.MiB;

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(513)]
    public void UnpinPages_CountOutOfRange_WarnsAndUnpinsNothing(int npage)
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        Assert.Equal(2, m.Pin(0x100000, 2));

        Assert.False(m.Unpin(0x100000, npage));

        Assert.Equal(2, m.Vpfns(0x100000).Count);
        Assert.Equal(2UL, m.T.LockedVmPages);
        m.AssertClean();
    }

    [Theory]
    [InlineData(513)]
    [InlineData(0)]
    public void UnpinPages_RefusedByTheCore_DriverKeepsItsPinsAndReleasesThemOnUnmap(int npage)
    {
        // Regression (differential campaign): the vendor driver dropped its own record of the pages even when the
        // core refused the call, so it no longer unpinned them when told of the unmap and type1 kept retrying.
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        Assert.Equal(2, m.Pin(0x100000, 2));

        Assert.False(m.Unpin(0x100000, npage));

        Assert.Equal(2UL, m.Driver.PinsHeld);
        Assert.Equal((0L, 1 * MiB), m.T.Unmap(m.Container, 0x100000, 1 * MiB));
        Assert.Equal(0UL, m.Driver.PinsHeld);
        Assert.Equal(0UL, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void UnpinPages_GapBeforeAPinnedMapping_DriverKeepsThePinsPastTheGap()
    {
        // The walk stops at the gap: the driver forgets only the pages type1 walked, and still unpins the rest
        // when the second mapping goes.
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 0x2000);
        m.Map(0x103000, 0x1000);
        Assert.Equal(2, m.Pin(0x100000, 2));
        Assert.Equal(1, m.Pin(0x103000, 1));

        Assert.False(m.Unpin(0x100000, 4));

        Assert.Equal(1UL, m.Driver.PinsHeld);
        Assert.Equal((0L, 0x1000UL), m.T.Unmap(m.Container, 0x103000, 0x1000));
        Assert.Equal(0UL, m.Driver.PinsHeld);
        Assert.Equal(0UL, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void UnpinPages_GapBeforeTheLastPage_WarnsAfterUnpinningUpToTheGap()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 0x2000);
        m.Map(0x103000, 0x1000);
        Assert.Equal(2, m.Pin(0x100000, 2));
        Assert.Equal(1, m.Pin(0x103000, 1));

        Assert.False(m.Unpin(0x100000, 4));

        Assert.Empty(m.Vpfns(0x100000));
        Assert.Single(m.Vpfns(0x103000));
        Assert.Equal(1UL, m.T.LockedVmPages);
        Assert.Equal(1UL, m.T.TotalPins);
    }

    [Fact]
    public void UnpinPages_PagesNeverPinned_AreSkippedWithoutWarning()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        Assert.Equal(1, m.Pin(0x101000, 1));

        Assert.True(m.Unpin(0x100000, 3));

        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void UnpinPages_V1Container_Warns()
    {
        var m = new MdevTestHost(new Type1TestHost(), type: VfioExtension.Type1Iommu);
        m.Map(0x100000, 1 * MiB);

        Assert.False(m.Unpin(0x100000, 1));
    }

    [Fact]
    public void UnpinPages_DeviceClosed_Warns()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        Assert.Equal(0, m.T.Sys.Close(m.DeviceFd));

        Assert.False(m.Device.UnpinPages(0x100000, 1, 12));
    }
}
