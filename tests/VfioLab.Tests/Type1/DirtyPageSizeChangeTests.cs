using VfioLab.Abi;
using VfioLab.Iommu;

namespace VfioLab.Tests.Type1;

/// <summary>
/// Dirty bitmaps are sized with the page size in force at START. When the domain with the larger pages
/// leaves during tracking, the kernel would write past the old bitmap; the model re-sizes it and reports
/// every page dirty instead of crashing or losing dirtying.
/// </summary>
public sealed class DirtyPageSizeChangeTests
{
    private const ulong K64 = 64 * 1024;

    [Fact]
    public void GetBitmap_PageSizeShrankSinceStart_ReportsEveryPageDirty()
    {
        var t = new Type1TestHost(otherIommu: IommuHardwareProfile.VtD.WithOverrides(K64 | PageSizeBitmap.Size2M, null, null, null, false));
        int c = t.OpenContainer();
        int gOther = t.OpenGroup(Type1TestHost.OtherIommuGroup);
        Assert.Equal(0, t.SetContainer(gOther, c));
        Assert.Equal(0, t.SetIommu(c));
        int gGpu = t.AddGroup(c, Type1TestHost.GpuGroup);
        Assert.Equal(PageSizeBitmap.Size2M, t.Backend(c).PgsizeBitmap & (ulong)-(long)t.Backend(c).PgsizeBitmap);
        ulong buf = t.MmapAnonymous(2 * Type1TestHost.MiB);
        Assert.Equal(0, t.Map(c, 0x200000, buf, 2 * Type1TestHost.MiB));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        Assert.Equal(0, t.UnsetContainer(gOther));
        Assert.Equal(4096UL, t.Backend(c).PgsizeBitmap & (ulong)-(long)t.Backend(c).PgsizeBitmap);
        ulong bitmap = t.MmapAnonymous(4096);

        var get = new byte[VfioIommuType1DirtyBitmap.MinSizeWithGetBitmap];
        new VfioIommuType1DirtyBitmap { Argsz = (uint)get.Length, Flags = DirtyPagesFlags.GetBitmap }.Write(get);
        new VfioIommuType1DirtyBitmapGet { Iova = 0x200000, Size = 2 * Type1TestHost.MiB, Bitmap = new VfioBitmap { Pgsize = 4096, Size = 64, Data = bitmap } }
            .Write(get.AsSpan(VfioIommuType1DirtyBitmap.Offsets.Data));
        long ret = t.Sys.Ioctl(c, VfioIoctl.IommuDirtyPages, get);

        Assert.Equal(0, ret);
        Assert.All(t.ReadWords(bitmap, 8), w => Assert.Equal(ulong.MaxValue, w));
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        GC.KeepAlive(gGpu);
    }
}
