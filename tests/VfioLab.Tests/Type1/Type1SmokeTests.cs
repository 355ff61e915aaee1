using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;

namespace VfioLab.Tests.Type1;

/// <summary>The backend's main path end to end: map pins, charges and translates; unmap undoes all of it.</summary>
public sealed class Type1SmokeTests
{
    [Fact]
    public void MapDma_AnonymousMemory_PinsChargesAndTranslates()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * Type1TestHost.MiB);

        Assert.Equal(0, t.Map(c, 0x100000, buf, 4 * Type1TestHost.MiB));

        Assert.Equal(1024UL, t.LockedVmPages);
        Assert.Equal(1024UL, t.PinnedFrames);
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.True(d.Translate(new Iova(0x100000), write: true).Ok);
        Assert.False(d.Translate(new Iova(0x100000 + (4 * Type1TestHost.MiB)), write: false).Ok);
    }

    [Fact]
    public void UnmapDma_WholeMapping_ReleasesEverything()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * Type1TestHost.MiB);
        Assert.Equal(0, t.Map(c, 0x100000, buf, 4 * Type1TestHost.MiB));

        (long ret, ulong size) = t.Unmap(c, 0x100000, 4 * Type1TestHost.MiB);

        Assert.Equal(0, ret);
        Assert.Equal(4 * Type1TestHost.MiB, size);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.DomainOf(Type1TestHost.GpuGroup)!.TotalEntries);
        Assert.Equal(65535UL, t.Backend(c).DmaAvail);
    }

    [Fact]
    public void MapDma_MemlockTooSmall_ReturnsENOMEMAndLeavesNothing()
    {
        var t = new Type1TestHost(memlock: 1 * Type1TestHost.MiB);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(4 * Type1TestHost.MiB);

        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 0, buf, 4 * Type1TestHost.MiB));

        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(0UL, t.DomainOf(Type1TestHost.GpuGroup)!.TotalEntries);
    }

    [Fact]
    public void MapDma_SecondDomainWithOtherPageSizes_ReplaysAndAndsBitmap()
    {
        var t = new Type1TestHost(otherIommu: IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, null, null, null, false));
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(8 * Type1TestHost.MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 8 * Type1TestHost.MiB));

        t.AddGroup(c, Type1TestHost.OtherIommuGroup);

        IommuDomain other = t.DomainOf(Type1TestHost.OtherIommuGroup)!;
        Assert.NotSame(t.DomainOf(Type1TestHost.GpuGroup), other);
        Assert.Equal(t.DomainOf(Type1TestHost.GpuGroup)!.IovaToPhys(new Iova(0x3000)), other.IovaToPhys(new Iova(0x3000)));
        Assert.Equal(2048UL, t.LockedVmPages);
    }
}
