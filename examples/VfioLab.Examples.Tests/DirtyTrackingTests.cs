using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Lab;

namespace VfioLab.Examples.Tests;

/// <summary>
/// One dirty-tracking round of a migration, as a VMM's save code drives it through the client: DIRTY_PAGES START,
/// devices write guest memory, GET_BITMAP, and what type1 reports. Type1 can only see writes it takes part in: pages
/// a mediated device pins (<c>vfio_pin_pages</c>) or writes through <c>vfio_dma_rw</c>. A passthrough device writes
/// through its IOMMU with no trace type1 could read, so while any group in the container has not declared a
/// "pinned page dirty scope" (a vfio-pci device never does) type1 reports every page of every IOMMU-mapped
/// mapping dirty, in every round (<c>update_user_bitmap</c>: <c>num_non_pinned_groups &amp;&amp; dma-&gt;iommu_mapped</c>).
/// </summary>
public sealed class DirtyTrackingTests
{
    private const ulong Ram = Size.MiB;
    private const ulong Pages = Ram / Size.Page;
    private const string VgpuUuid = "8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11";

    private static LabHost Host() => new LabHostBuilder()
        .WithMemory(Size.GiB)
        .AddPciDevice("nic", "0000:02:00.0", d => d.Bar(0, Size.MiB).Group(2))
        .AddMdevDevice("vgpu", Guid.Parse(VgpuUuid), group: 20)
        .AddProcess("qemu", memlockBytes: 64 * Size.MiB)
        .Build();

    /// <summary>Opens a TYPE1v2 container with <paramref name="groups"/> and maps 1 MiB of guest RAM at IOVA 0.</summary>
    private static (Container Container, Group[] Groups) MapGuest(LabProcess qemu, params int[] groups)
    {
        var container = Container.Open(qemu.Syscalls);
        Group[] opened = [.. groups.Select(n => Group.Open(qemu.Syscalls, n))];
        foreach (Group g in opened)
        {
            g.SetContainer(container);
        }
        container.SetIommu(VfioExtension.Type1v2Iommu);
        long ram = qemu.Syscalls.Mmap(0, Ram, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate, -1, 0);
        Assert.True(ram > 0);
        container.MapDma(0, (ulong)ram, Ram);
        return (container, opened);
    }

    [Fact]
    public void GetDirtyBitmap_PassthroughOnly_ReportsEveryMappedPageInEveryRound()
    {
        LabHost host = Host();
        LabProcess qemu = host.Process("qemu");
        (Container container, _) = MapGuest(qemu, 2);
        MigrationInfo migration = container.GetIommuInfo().Migration!;
        container.StartDirtyTracking();

        Assert.True(host.Device("nic").DmaWrite(0x3000, [1, 2, 3, 4]).Ok);
        DirtyBitmap first = container.GetDirtyBitmap(0, Ram, Size.Page);
        DirtyBitmap second = container.GetDirtyBitmap(0, Ram, Size.Page);
        container.StopDirtyTracking();

        // Tracking works at the smallest IOMMU page; one call may cover up to 256 MiB of bitmap.
        Assert.Equal((Size.Page, 256 * Size.MiB), (migration.PgsizeBitmap, migration.MaxDirtyBitmapSize));
        // The NIC wrote one page, yet all 256 are dirty: type1 cannot tell which pages it wrote.
        Assert.Equal(Pages, first.DirtyPageCount);
        Assert.Equal(Pages, second.DirtyPageCount);
        Assert.Empty(host.CheckInvariants());
    }

    [Fact]
    public void GetDirtyBitmap_MediatedOnly_ReportsExactlyPinnedAndWrittenPages()
    {
        LabHost host = Host();
        LabProcess qemu = host.Process("qemu");
        (Container container, Group[] groups) = MapGuest(qemu, 20);
        using Device vgpuFd = groups[0].OpenDevice(VgpuUuid);
        LabDevice vgpu = host.Device("vgpu");
        Span<ulong> pfns = stackalloc ulong[2];
        container.StartDirtyTracking();

        // The vGPU's driver pins two pages for a ring, writes 4 bytes across a page boundary, reads elsewhere.
        Assert.Equal(2, vgpu.PinPages(0x2000, 2, write: true, pfns));
        Assert.Equal(Errno.None, vgpu.DmaRw(0x40ffe, [1, 2, 3, 4], write: true));
        Assert.Equal(Errno.None, vgpu.DmaRw(0x80000, new byte[16], write: false));
        DirtyBitmap first = container.GetDirtyBitmap(0, Ram, Size.Page);
        DirtyBitmap second = container.GetDirtyBitmap(0, Ram, Size.Page);
        Assert.True(vgpu.UnpinPages(0x2000, 2));
        DirtyBitmap afterUnpin = container.GetDirtyBitmap(0, Ram, Size.Page);
        DirtyBitmap last = container.GetDirtyBitmap(0, Ram, Size.Page);

        Assert.Equal([0x2000UL, 0x3000, 0x40000, 0x41000], first.DirtyPages());
        // Reported pages are clean again, except pinned ones: the driver may write them at any time.
        Assert.Equal([0x2000UL, 0x3000], second.DirtyPages());
        // Unpinned pages are reported one last time (unpinning a writable page dirties it), then clean.
        Assert.Equal([0x2000UL, 0x3000], afterUnpin.DirtyPages());
        Assert.Empty(last.DirtyPages());
        // With no IOMMU domain nothing is pinned at MAP: only the driver's pins were charged, and they are gone.
        Assert.Equal(0UL, qemu.LockedVmBytes);
    }

    [Fact]
    public void GetDirtyBitmap_PassthroughGroupLeavesDuringTracking_AllDirtyOnceThenExactPages()
    {
        LabHost host = Host();
        LabProcess qemu = host.Process("qemu");
        (Container container, Group[] groups) = MapGuest(qemu, 2, 20);
        using Device vgpuFd = groups[1].OpenDevice(VgpuUuid);
        LabDevice vgpu = host.Device("vgpu");
        Span<ulong> pfns = stackalloc ulong[1];
        container.StartDirtyTracking();
        Assert.Equal(1, vgpu.PinPages(0x5000, 1, write: true, pfns));
        DirtyBitmap withNic = container.GetDirtyBitmap(0, Ram, Size.Page);

        // The NIC is hot-unplugged from the guest mid-migration: its group leaves the container.
        groups[0].UnsetContainer();
        DirtyBitmap afterLeave = container.GetDirtyBitmap(0, Ram, Size.Page);
        DirtyBitmap narrowed = container.GetDirtyBitmap(0, Ram, Size.Page);

        Assert.Equal(Pages, withNic.DirtyPageCount);
        // Leaving marks every page dirty once, so no write the NIC made before it left is lost.
        Assert.Equal(Pages, afterLeave.DirtyPageCount);
        Assert.Equal([0x5000UL], narrowed.DirtyPages());
        // The last IOMMU domain went: the mapping is unpinned and re-accounted to the vGPU's single pin.
        Assert.Equal(Size.Page, qemu.LockedVmBytes);
        Assert.Empty(host.CheckInvariants());
    }
}
