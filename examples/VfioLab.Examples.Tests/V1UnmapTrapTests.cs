using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Lab;

namespace VfioLab.Examples.Tests;

/// <summary>
/// The v1 unmap trap a DPDK/SPDK-style driver falls into: on a VFIO_TYPE1_IOMMU container an UNMAP_DMA that starts
/// inside a mapping succeeds having unmapped nothing, and one that covers a mapping's first byte removes all of it;
/// TYPE1v2 refuses both with EINVAL (no bisection). Two 2 MiB huge-page segments are mapped at adjacent IOVAs.
/// </summary>
public sealed class V1UnmapTrapTests
{
    private const ulong Segment = 2 * Size.MiB;
    private const ulong First = 0x20_0000;
    private const ulong Second = 0x40_0000;

    private static (LabHost Host, LabProcess Spdk, Container Container) Setup(uint iommuType)
    {
        LabHost host = new LabHostBuilder()
            .WithMemory(4 * Size.GiB)
            .AddPciDevice("nvme", "0000:05:00.0", d => d.Bar(0, 16 * Size.KiB).Group(5))
            .AddProcess("spdk", LabHostBuilder.Unlimited)
            .Build();
        LabProcess spdk = host.Process("spdk");
        var container = Container.Open(spdk.Syscalls);
        Group.Open(spdk.Syscalls, 5).SetContainer(container);
        container.SetIommu(iommuType);
        long memory = spdk.Syscalls.Mmap(0, 2 * Segment, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Shared | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge2MiB, -1, 0);
        Assert.True(memory > 0);
        container.MapDma(First, (ulong)memory, Segment);
        container.MapDma(Second, (ulong)memory + Segment, Segment);
        return (host, spdk, container);
    }

    [Fact]
    public void UnmapDma_V1StartsInsideMapping_ReturnsZeroBytesAndDeviceStillReachesIt()
    {
        (LabHost host, LabProcess spdk, Container container) = Setup(VfioExtension.Type1Iommu);

        // "Release the second half of the first segment": v1 reports success with nothing unmapped.
        ulong unmapped = container.UnmapDma(First + Size.MiB, Size.MiB);

        Assert.Equal(0UL, unmapped);
        Assert.Equal(2UL, spdk.ContainerOf(container.Fd)!.MappingCount);
        Assert.Equal(2 * Segment, spdk.LockedVmBytes);
        Assert.True(host.Device("nvme").DmaWrite(First + Size.MiB + 0x8_0000, [0xaa, 0xbb]).Ok);
    }

    [Fact]
    public void UnmapDma_V1CoversFirstByte_RemovesWholeMapping()
    {
        (LabHost host, LabProcess spdk, Container container) = Setup(VfioExtension.Type1Iommu);

        ulong first = container.UnmapDma(First, Size.Page);
        // A range from the second mapping's start past its end: the whole mapping goes too.
        ulong second = container.UnmapDma(Second, Size.MiB);

        Assert.Equal(Segment, first);
        Assert.Equal(Segment, second);
        Assert.Equal(0UL, spdk.ContainerOf(container.Fd)!.MappingCount);
        Assert.Equal(DmaFaultReason.NotMapped, host.Device("nvme").DmaRead(First + Size.Page, 4).FaultReason);
        Assert.Equal(0UL, spdk.LockedVmBytes);
        Assert.Equal(0UL, host.PinnedPages);
        Assert.Empty(host.CheckInvariants());
    }

    [Theory]
    [InlineData(First + Size.MiB, Size.MiB)]
    [InlineData(First, Size.Page)]
    [InlineData(First + Size.MiB, Segment)]
    public void UnmapDma_V2SplitsMapping_ThrowsEinvalAndChangesNothing(ulong iova, ulong size)
    {
        (LabHost host, LabProcess spdk, Container container) = Setup(VfioExtension.Type1v2Iommu);
        string before = host.Digest();

        VfioException e = Assert.Throws<VfioException>(() => container.UnmapDma(iova, size));

        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(before, host.Digest());
        Assert.Equal(2 * Segment, spdk.LockedVmBytes);
    }

    [Fact]
    public void UnmapDma_V2ExactRange_UnmapsBothThenReportsZero()
    {
        (LabHost host, LabProcess spdk, Container container) = Setup(VfioExtension.Type1v2Iommu);

        ulong both = container.UnmapDma(First, 2 * Segment);
        ulong again = container.UnmapDma(First, 2 * Segment);

        Assert.Equal(2 * Segment, both);
        Assert.Equal(0UL, again);
        Assert.Equal(0UL, spdk.LockedVmBytes);
        Assert.Equal(0UL, host.PinnedPages);
    }
}
