using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Iommu;

namespace VfioLab.Tests.Spapr;

/// <summary>v1 MAP/UNMAP: each TCE pins its page from the caller's mm; checks in the kernel's order.</summary>
public sealed class SpaprMapV1Tests
{
    private const ulong KiB = SpaprTestHost.KiB;
    private const ulong MiB = SpaprTestHost.MiB;

    private static (SpaprTestHost H, int C, ulong Buf) Enabled(int pageShift = 16)
    {
        var h = new SpaprTestHost(pageShift: pageShift);
        (int c, _) = h.Container(v2: false);
        Assert.Equal(0, h.Enable(c));
        return (h, c, h.MmapAnonymous(1 * MiB));
    }

    [Fact]
    public void MapDma_NotEnabled_ReturnsEPERM()
    {
        var h = new SpaprTestHost();
        (int c, _) = h.Container(v2: false);
        ulong buf = h.MmapAnonymous(64 * KiB);
        Assert.Equal(Errno.EPERM.AsReturn(), h.Map(c, 0, buf, 64 * KiB));
        Assert.Null(h.Pe(SpaprTestHost.GpuGroup).Windows[0]);
        Assert.Equal(0UL, h.TotalPins);
    }

    [Fact]
    public void MapDma_On64KHost_PinsEachPageOncePerTce()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0x10000, buf, 128 * KiB));
        Assert.Equal(32UL, h.ValidTces());
        Assert.Equal(2UL, h.PinnedFrames);
        Assert.Equal(32UL, h.TotalPins);
        h.AssertClean();
    }

    [Fact]
    public void MapDma_SubPageVaddr_PinsThePartlyCoveredPages()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0x10000, buf + 0xc000, 32 * KiB));
        Assert.Equal(8UL, h.ValidTces());
        Assert.Equal(2UL, h.PinnedFrames);
        Assert.Equal(8UL, h.TotalPins);
        IommuTranslation t = IommuDma.Translate(h.Host.IommuGroups[1], new Iova(0x14000), write: true);
        Assert.True(t.Ok);
        h.AssertClean();
        Assert.Equal(0, h.Unmap(c, 0x10000, 32 * KiB).Ret);
        Assert.Equal(0UL, h.TotalPins);
    }

    [Theory]
    [InlineData(0x10000UL, 0x1800UL, 4096UL)]   // vaddr off a TCE page
    [InlineData(0x10000UL, 0UL, 0x1800UL)]      // size off a TCE page
    public void MapDma_Misaligned_ReturnsEINVAL(ulong iova, ulong vaddrOffset, ulong size)
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Map(c, iova, buf + vaddrOffset, size));
        Assert.Equal(0UL, h.ValidTces());
        Assert.Equal(0UL, h.TotalPins);
    }

    [Fact]
    public void MapDma_IovaOffTcePage_ReturnsOneAndMapsNothing()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0, buf, 4 * KiB));
        StateDigest before = h.Digest();
        Assert.Equal(1, h.Map(c, 0x10800, buf, 4 * KiB));
        Assert.Null(h.Digest().FirstDifference(before));
    }

    [Fact]
    public void MapDma_OutsideEveryWindow_ReturnsENXIO()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(Errno.ENXIO.AsReturn(), h.Map(c, 2 * SpaprTestHost.GiB, buf, 64 * KiB));
        Assert.Equal(0UL, h.TotalPins);
    }

    [Fact]
    public void MapDma_RunningPastTheWindow_ReturnsZeroAndUnmapClearsItAll()
    {
        // iommu_tce_check_ioba checks only the first TCE: the rest is written past the window, out of the PHB's reach.
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0, buf, 4 * KiB));   // creates the default window (2 GiB of 4 KiB TCEs)
        ulong last = (2 * SpaprTestHost.GiB) - (64 * KiB);

        Assert.Equal(0, h.Map(c, last, buf, 128 * KiB));

        Assert.Equal(1UL + 32, h.ValidTces());
        Assert.Equal(1UL + 32, h.TotalPins);
        IommuTranslation inside = IommuDma.Translate(h.Host.IommuGroups[1], new Iova((2 * SpaprTestHost.GiB) - 4), write: true);
        Assert.True(inside.Ok, inside.Fault.ToString());
        Assert.Equal(4UL, inside.ContiguousBytes);
        Assert.Equal(IommuFaultReason.NotMapped, IommuDma.Translate(h.Host.IommuGroups[1], new Iova(2 * SpaprTestHost.GiB), write: false).Fault);

        Assert.Equal((0L, 128 * KiB), h.Unmap(c, last, 128 * KiB));
        Assert.Equal(1UL, h.ValidTces());
        Assert.Equal(1UL, h.TotalPins);
        h.AssertClean();
    }

    [Theory]
    [InlineData(DmaMapFlags.None)]
    [InlineData(DmaMapFlags.Vaddr)]
    public void MapDma_BadFlags_ReturnsEINVAL(DmaMapFlags flags)
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Map(c, 0, buf, 64 * KiB, flags));
        Assert.Equal(0UL, h.TotalPins);
    }

    [Fact]
    public void MapDma_ShortArgsz_ReturnsEINVAL()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Map(c, 0, buf, 64 * KiB, argsz: 31));
        Assert.Null(h.Pe(SpaprTestHost.GpuGroup).Windows[0]);
    }

    [Fact]
    public void MapDma_UnbackedTail_ReturnsEFAULTAndClearsWhatItWrote()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Sys.Munmap(buf + (512 * KiB), 512 * KiB));
        Assert.Equal(0, h.Map(c, 0, buf, 4 * KiB));
        StateDigest before = h.Digest();
        Assert.Equal(Errno.EFAULT.AsReturn(), h.Map(c, 0x100000, buf, 1 * MiB));
        Assert.Null(h.Digest().FirstDifference(before));
        h.AssertClean();
    }

    [Fact]
    public void MapDma_ReadOnlyMemoryForDeviceWrites_ReturnsEFAULT()
    {
        (SpaprTestHost h, int c, _) = Enabled();
        ulong ro = h.MmapReadOnly(64 * KiB);
        Assert.Equal(Errno.EFAULT.AsReturn(), h.Map(c, 0, ro, 64 * KiB));
        Assert.Equal(0UL, h.ValidTces());
        Assert.Equal(0, h.Map(c, 0, ro, 64 * KiB, DmaMapFlags.Read));
        Assert.Equal(16UL, h.ValidTces());
        h.AssertClean();
    }

    [Fact]
    public void MapDma_OverAValidTce_ReplacesItAndReleasesTheOldPage()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0x10000, buf, 64 * KiB));
        Assert.Equal(0, h.Map(c, 0x10000, buf + (64 * KiB), 64 * KiB));
        Assert.Equal(16UL, h.ValidTces());
        Assert.Equal(1UL, h.PinnedFrames);
        Assert.Equal(16UL, h.TotalPins);
        h.AssertClean();
    }

    [Fact]
    public void MapDma_WriteOnly_DeviceCanReadToo()
    {
        // pnv_tce_xchg: a TCE with TCE_PCI_WRITE is written with TCE_PCI_READ as well.
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0, buf, 64 * KiB, DmaMapFlags.Write));
        IommuTranslation read = IommuDma.Translate(h.Host.IommuGroups[1], new Iova(0), write: false);
        Assert.True(read.Ok, read.Fault.ToString());
        Assert.Equal(IommuProt.Read | IommuProt.Write, read.Prot);
        Assert.True(IommuDma.Translate(h.Host.IommuGroups[1], new Iova(0), write: true).Ok);
        Assert.Equal(16UL, h.ValidTces());
        h.AssertClean();
    }

    [Fact]
    public void MapDma_ReadOnly_DeviceCannotWrite()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0, buf, 64 * KiB, DmaMapFlags.Read));
        Assert.Equal(IommuFaultReason.WriteDenied, IommuDma.Translate(h.Host.IommuGroups[1], new Iova(0), write: true).Fault);
        Assert.True(IommuDma.Translate(h.Host.IommuGroups[1], new Iova(0), write: false).Ok);
    }

    [Fact]
    public void UnmapDma_Flags_ReturnsEINVAL()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0, buf, 64 * KiB));
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Unmap(c, 0, 64 * KiB, DmaUnmapFlags.All).Ret);
        Assert.Equal(16UL, h.ValidTces());
    }

    [Fact]
    public void UnmapDma_SizeOffTcePage_ReturnsEINVAL()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0, buf, 64 * KiB));
        Assert.Equal(Errno.EINVAL.AsReturn(), h.Unmap(c, 0, 0x800).Ret);
        Assert.Equal(16UL, h.ValidTces());
    }

    [Fact]
    public void UnmapDma_IovaOffTcePage_ReturnsOneAndClearsNothing()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0, buf, 64 * KiB));
        Assert.Equal(1, h.Unmap(c, 0x800, 4 * KiB).Ret);
        Assert.Equal(16UL, h.ValidTces());
    }

    [Fact]
    public void UnmapDma_RangeWithHoles_ReturnsZeroAndWritesNoSize()
    {
        (SpaprTestHost h, int c, ulong buf) = Enabled();
        Assert.Equal(0, h.Map(c, 0x20000, buf, 64 * KiB));
        (long ret, ulong size) = h.Unmap(c, 0, 1 * MiB);
        Assert.Equal(0, ret);
        Assert.Equal(1 * MiB, size);   // the input, untouched
        Assert.Equal(0UL, h.ValidTces());
        Assert.Equal(0UL, h.TotalPins);
        h.AssertClean();
    }
}
