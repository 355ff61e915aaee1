using VfioLab.Abi;
using VfioLab.Client;

namespace VfioLab.Tests.Client;

/// <summary>The typed client's container and group calls against the simulated kernel: the same calls a VMM makes,
/// with kernel errors surfacing as <see cref="VfioException"/> carrying the exact errno.</summary>
public sealed class ContainerClientTests
{
    private const ulong MiB = ClientHost.MiB;

    private static (ClientHost Host, Container Container, Group Group) Ready(string memlock = "unlimited")
    {
        var host = new ClientHost(memlock);
        Container container = Container.Open(host.Sys);
        Group group = Group.Open(host.Sys, 1);
        group.SetContainer(container);
        Assert.Equal(VfioExtension.Type1v2Iommu, container.SelectIommu());
        return (host, container, group);
    }

    [Fact]
    public void Open_NoSuchPath_ThrowsENOENT()
    {
        var host = new ClientHost();
        VfioException e = Assert.Throws<VfioException>(() => Container.Open(host.Sys, "/dev/vfio/nope"));
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Contains("open /dev/vfio/nope", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SelectIommu_NoGroupYet_ThrowsEINVAL_AndSetsNothing()
    {
        var host = new ClientHost();
        using Container container = Container.Open(host.Sys);
        VfioException e = Assert.Throws<VfioException>(() => container.SelectIommu());
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(0u, container.IommuType);
        Assert.True(container.CheckExtension(VfioExtension.Type1v2Iommu));
        Assert.False(container.CheckExtension(VfioExtension.SpaprTceIommu));
    }

    [Fact]
    public void GetIommuInfo_Type1v2_DecodesEveryCapability()
    {
        (_, Container container, _) = Ready();
        IommuInfo info = container.GetIommuInfo();
        Assert.Equal(IommuInfoFlags.Pgsizes | IommuInfoFlags.Caps, info.Flags);
        Assert.Equal(4096UL, info.MinPageSize);
        Assert.Equal(65535u, info.DmaAvail);
        Assert.NotNull(info.Migration);
        Assert.NotEqual(0UL, info.Migration!.PgsizeBitmap & 4096);
        // VT-d's MSI window is carved out of the usable ranges.
        Assert.True(info.IovaRanges.Count >= 2);
        Assert.DoesNotContain(info.IovaRanges, r => r.Contains(0xfee00000, 4096));
        Assert.Contains(info.IovaRanges, r => r.Contains(0, 4096));
    }

    [Fact]
    public void MapDma_DeviceWrites_BytesLandInProcessMemory()
    {
        (ClientHost host, Container container, _) = Ready();
        ulong ram = host.Mmap(2 * MiB);
        container.MapDma(0x100000, ram, 2 * MiB);
        Assert.True(host.DmaWrite("gpu", 0x100000 + 0x2000, [0xde, 0xad, 0xbe, 0xef]).Ok);
        byte[] seen = new byte[4];
        Assert.Equal(0, host.Sys.ReadMemory(ram + 0x2000, seen));
        Assert.Equal(new byte[] { 0xde, 0xad, 0xbe, 0xef }, seen);
        Assert.Equal(65534u, container.GetIommuInfo().DmaAvail);
    }

    [Fact]
    public void MapDma_Overlap_ThrowsEEXISTNamingInputs_AndKeepsTheFirstMapping()
    {
        (ClientHost host, Container container, _) = Ready();
        ulong ram = host.Mmap(2 * MiB);
        container.MapDma(0x100000, ram, 1 * MiB);
        VfioException e = Assert.Throws<VfioException>(() => container.MapDma(0x180000, ram + MiB, 1 * MiB));
        Assert.Equal(Errno.EEXIST, e.Errno);
        Assert.Contains("iova 0x180000", e.Message, StringComparison.Ordinal);
        Assert.Contains($"vaddr 0x{ram + MiB:x}", e.Message, StringComparison.Ordinal);
        Assert.Equal(65534u, container.GetIommuInfo().DmaAvail);
        Assert.True(host.DmaRead("gpu", 0x100000, 8).Ok);
        Assert.False(host.DmaRead("gpu", 0x200000, 8).Ok);
    }

    [Fact]
    public void MapDma_PastMemlock_ThrowsENOMEM_AndChargesNothing()
    {
        (ClientHost host, Container container, _) = Ready(memlock: "1MiB");
        ulong ram = host.Mmap(2 * MiB);
        VfioException e = Assert.Throws<VfioException>(() => container.MapDma(0, ram, 2 * MiB));
        Assert.Equal(Errno.ENOMEM, e.Errno);
        Assert.Equal(0UL, host.Process.LastMm.LockedVm);
        Assert.Equal(65535u, container.GetIommuInfo().DmaAvail);
    }

    [Fact]
    public void UnmapDma_AndUnmapAll_ReturnTheBytesUnmapped()
    {
        (ClientHost host, Container container, _) = Ready();
        ulong ram = host.Mmap(4 * MiB);
        container.MapDma(0, ram, 1 * MiB);
        container.MapDma(1 * MiB, ram + MiB, 1 * MiB);
        container.MapDma(8 * MiB, ram + 2 * MiB, 2 * MiB);
        Assert.Equal(1 * MiB, container.UnmapDma(1 * MiB, 1 * MiB));
        Assert.Equal(3 * MiB, container.UnmapAll());
        Assert.Equal(65535u, container.GetIommuInfo().DmaAvail);
        Assert.Equal(0UL, host.Process.LastMm.LockedVm);
    }

    [Fact]
    public void DirtyTracking_IommuBackedDevice_EveryPageReportedOnEveryCall()
    {
        // A vfio-pci device is not in pinned-page dirty scope: type1 cannot know what it wrote, so each report
        // (GET_BITMAP or UNMAP with the bitmap) marks every page of the range dirty.
        (ClientHost host, Container container, _) = Ready();
        ulong ram = host.Mmap(1 * MiB);
        container.MapDma(0x400000, ram, 1 * MiB);
        container.StartDirtyTracking();
        Assert.True(host.DmaWrite("gpu", 0x400000 + (5 * 4096) + 12, [1, 2, 3]).Ok);

        DirtyBitmap bitmap = container.GetDirtyBitmap(0x400000, 1 * MiB, 4096);
        Assert.Equal(256UL, bitmap.PageCount);
        Assert.Equal(256UL, bitmap.DirtyPageCount);
        Assert.True(bitmap.IsDirty(0x400000 + (5 * 4096)));
        Assert.False(bitmap.IsDirty(0x400000 + MiB));
        Assert.Equal(256UL, container.GetDirtyBitmap(0x400000, 1 * MiB, 4096).DirtyPageCount);

        (ulong unmapped, DirtyBitmap last) = container.UnmapDmaWithDirtyBitmap(0x400000, 1 * MiB, 4096);
        Assert.Equal(1 * MiB, unmapped);
        Assert.Equal(0x400000UL, last.DirtyPages().First());
        Assert.Equal(256, last.DirtyPages().Count());
        container.StopDirtyTracking();
    }

    [Fact]
    public void GetDirtyBitmap_NotTracking_ThrowsEINVAL()
    {
        (ClientHost host, Container container, _) = Ready();
        ulong ram = host.Mmap(1 * MiB);
        container.MapDma(0, ram, 1 * MiB);
        VfioException e = Assert.Throws<VfioException>(() => container.GetDirtyBitmap(0, 1 * MiB, 4096));
        Assert.Equal(Errno.EINVAL, e.Errno);
    }

    [Fact]
    public void InvalidateVaddr_ThenUpdate_KeepsTranslating()
    {
        (ClientHost host, Container container, _) = Ready();
        ulong ram = host.Mmap(1 * MiB);
        container.MapDma(0, ram, 1 * MiB);
        Assert.Equal(1 * MiB, container.InvalidateVaddr(0, 1 * MiB));
        Assert.True(host.DmaRead("gpu", 0, 8).Ok);
        VfioException twice = Assert.Throws<VfioException>(() => container.InvalidateVaddr(0, 1 * MiB));
        Assert.Equal(Errno.EINVAL, twice.Errno);
        container.UpdateVaddr(0, ram, 1 * MiB);
        Assert.Equal(1 * MiB, container.UnmapDma(0, 1 * MiB));
    }

    [Fact]
    public void GroupOpen_NoSuchGroup_ThrowsENOENT()
    {
        var host = new ClientHost();
        VfioException e = Assert.Throws<VfioException>(() => Group.Open(host.Sys, 42));
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Contains("/dev/vfio/42", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetContainer_GroupNotViable_RefusesBeforeTheIoctl()
    {
        var host = new ClientHost();
        using Container container = Container.Open(host.Sys);
        using Group group = Group.Open(host.Sys, 3);
        Assert.Equal((false, false), group.GetStatus());
        VfioException e = Assert.Throws<VfioException>(() => group.SetContainer(container));
        Assert.Equal(Errno.None, e.Errno);
        Assert.Contains("not viable", e.Message, StringComparison.Ordinal);
        Assert.Equal((false, false), group.GetStatus());
    }

    [Fact]
    public void UnsetContainer_NotInAContainer_ThrowsEINVAL()
    {
        var host = new ClientHost();
        using Group group = Group.Open(host.Sys, 2);
        Assert.Equal(Errno.EINVAL, Assert.Throws<VfioException>(group.UnsetContainer).Errno);
        using Container container = Container.Open(host.Sys);
        group.SetContainer(container);
        Assert.Equal((true, true), group.GetStatus());
        group.UnsetContainer();
        Assert.Equal((true, false), group.GetStatus());
    }
}
