using VfioLab.Abi;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Mdev;

/// <summary>
/// vfio_dma_rw (spec §3.15, vfio_iommu_type1_dma_rw): copies between a vendor driver's buffer and the mapping
/// owner's memory, chunk by chunk across pages and mappings, with EINVAL / EPERM / EFAULT per chunk; chunks
/// already copied stay copied; nothing is pinned or charged.
/// </summary>
public sealed class DmaRwTests
{
    private const ulong MiB = Type1TestHost.MiB;

    [Fact]
    public void DmaRw_CrossingPagesAndMappings_LandsInTheOwnersMemory()
    {
        var m = new MdevTestHost(new Type1TestHost());
        ulong a = m.Map(0x100000, 0x2000);
        ulong b = m.Map(0x102000, 0x2000);
        byte[] data = [.. Enumerable.Range(0, 0x1000).Select(i => (byte)(i * 7))];
        ulong pins = m.T.TotalPins;

        Assert.Equal(Errno.None, m.Rw(0x101800, data, write: true));

        var back = new byte[0x1000];
        Assert.Equal(0, m.T.Sys.ReadMemory(a + 0x1800, back.AsSpan(0, 0x800)));
        Assert.Equal(0, m.T.Sys.ReadMemory(b, back.AsSpan(0x800)));
        Assert.Equal(data, back);
        var read = new byte[0x1000];
        Assert.Equal(Errno.None, m.Rw(0x101800, read, write: false));
        Assert.Equal(data, read);
        Assert.Equal(pins, m.T.TotalPins);
        Assert.Equal(0UL, m.T.LockedVmPages);
        m.AssertClean();
    }

    [Fact]
    public void DmaRw_GapAfterTheFirstMapping_ReturnsEINVALAfterCopyingTheFirstPart()
    {
        var m = new MdevTestHost(new Type1TestHost());
        ulong a = m.Map(0x100000, 0x1000);
        m.Map(0x102000, 0x1000);

        Assert.Equal(Errno.EINVAL, m.Rw(0x100f00, [.. Enumerable.Repeat((byte)0xab, 0x200)], write: true));

        var back = new byte[0x100];
        Assert.Equal(0, m.T.Sys.ReadMemory(a + 0xf00, back));
        Assert.All(back, x => Assert.Equal(0xab, x));
        Assert.Equal(Errno.EINVAL, m.Rw(0x101000, new byte[1], write: false));
    }

    [Fact]
    public void DmaRw_Permissions_WriteNeedsWriteAndEverythingNeedsRead()
    {
        var m = new MdevTestHost(new Type1TestHost());
        ulong r = m.Map(0x100000, 0x1000, DmaMapFlags.Read);
        m.Map(0x200000, 0x1000, DmaMapFlags.Write);

        Assert.Equal(Errno.EPERM, m.Rw(0x100000, [1], write: true));
        Assert.Equal(Errno.EPERM, m.Rw(0x200000, [1], write: true));
        Assert.Equal(Errno.EPERM, m.Rw(0x200000, new byte[1], write: false));
        Assert.Equal(Errno.None, m.Rw(0x100000, new byte[1], write: false));

        var back = new byte[1];
        Assert.Equal(0, m.T.Sys.ReadMemory(r, back));
        Assert.Equal(0, back[0]);
    }

    [Fact]
    public void DmaRw_UserThreadOfAnotherProcess_ReturnsEFAULT_KernelThreadAndOwnerSucceed()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 0x1000);
        VfioLab.Host.Process other = m.T.Host.Spawn("other", ulong.MaxValue, capIpcLock: false);

        Assert.Equal(Errno.EFAULT, m.Rw(0x100000, [5], write: true, other));
        Assert.Equal(Errno.None, m.Rw(0x100000, [5], write: true, m.T.Process));
        Assert.Equal(Errno.None, m.Rw(0x100000, [6], write: true, null));
    }

    [Fact]
    public void DmaRw_OwnerMemoryGone_ReturnsEFAULT()
    {
        var m = new MdevTestHost(new Type1TestHost());
        ulong vaddr = m.Map(0x100000, 0x2000);
        Assert.Equal(0, m.T.Sys.Munmap(vaddr + 0x1000, 0x1000));

        Assert.Equal(Errno.EFAULT, m.Rw(0x100ff0, new byte[0x20], write: false));
        Assert.Equal(Errno.None, m.Rw(0x100ff0, new byte[0x10], write: false));
    }

    [Fact]
    public void DmaRw_NoDataOrDeviceClosed_ReturnsEINVAL()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 0x1000);

        Assert.Equal(Errno.EINVAL, m.Rw(0x100000, [], write: false));
        Assert.Equal(0, m.T.Sys.Close(m.DeviceFd));
        Assert.Equal(Errno.EINVAL, m.Rw(0x100000, new byte[1], write: false));
    }

    [Fact]
    public void DmaRw_V1Container_IsNotRefused()
    {
        // Unlike pin_pages (EACCES), type1's dma_rw never checks for v2.
        var m = new MdevTestHost(new Type1TestHost(), type: VfioExtension.Type1Iommu);
        m.Map(0x100000, 0x1000);

        Assert.Equal(Errno.None, m.Rw(0x100000, [9], write: true));
    }
}
