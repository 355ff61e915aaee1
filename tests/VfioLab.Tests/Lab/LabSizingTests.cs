using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Lab;

namespace VfioLab.Tests.Lab;

/// <summary>The inspection snapshots a VMM author sizes a guest with: a device's IOMMU domain (IOPTEs by page size,
/// page-table memory) and a POWER PE's DMA windows; and vfio_pin_pages with the access spelled out.</summary>
public sealed class LabSizingTests
{
    private const ulong KiB = 1UL << 10;
    private const ulong MiB = 1UL << 20;
    private const MemoryProtection ReadWrite = MemoryProtection.Read | MemoryProtection.Write;
    private const MmapFlags Anonymous = MmapFlags.Private | MmapFlags.Anonymous;

    private static ulong Mmap(LabProcess p, ulong size) => (ulong)p.Syscalls.Mmap(0, size, ReadWrite, Anonymous, -1, 0);

    [Fact]
    public void Domain_NoContainer_IsNull()
    {
        LabHost host = new LabHostBuilder().AddPciDevice("nic", "0000:02:00.0", d => d.Group(7)).Build();

        Assert.Null(host.Device("nic").Domain);
        Assert.Empty(host.Device("nic").TceWindows);
    }

    [Fact]
    public void Domain_FourPagesMapped_CountsFourKiBEntriesAndOneTablePerLevel()
    {
        LabHost host = new LabHostBuilder().AddPciDevice("nic", "0000:02:00.0", d => d.Group(7)).AddProcess("vmm", 64 * MiB).Build();
        LabProcess vmm = host.Process("vmm");
        using var container = Container.Open(vmm.Syscalls);
        using var group = Group.Open(vmm.Syscalls, 7);
        group.SetContainer(container);
        container.SetIommu(VfioExtension.Type1v2Iommu);

        container.MapDma(0x100000, Mmap(vmm, 16 * KiB), 16 * KiB);

        LabDomain domain = Assert.IsType<LabDomain>(host.Device("nic").Domain);
        Assert.Equal("vt-d#0/d1", domain.Name);
        Assert.Equal(4 * KiB, domain.MinPageSize);
        Assert.Equal(4UL, domain.Entries);
        Assert.Equal([new KeyValuePair<ulong, ulong>(4 * KiB, 4)], domain.EntriesByPageSize);
        // 4 KiB granule, 48-bit IOVA: four levels, one table each.
        Assert.Equal(4UL, domain.PageTablePages);
        Assert.Equal(16 * KiB, domain.PageTableBytes);
        Assert.Equal([7], domain.Groups);
    }

    [Fact]
    public void TceWindows_SpaprV1AfterFirstMap_ShowsTheDefaultWindowWithItsValidTcesAndCharge()
    {
        LabHost host = new LabHostBuilder().WithMemory(8UL << 30).WithPageSize(64 * KiB).WithIommu(IommuKind.SpaprTce)
            .AddPciDevice("nic", "0000:01:00.0", d => d.Group(1)).AddProcess("qemu", 4UL << 30).Build();
        LabProcess qemu = host.Process("qemu");
        using var container = Container.Open(qemu.Syscalls);
        using var group = Group.Open(qemu.Syscalls, 1);
        group.SetContainer(container);
        container.SetIommu(VfioExtension.SpaprTceIommu);
        container.Enable();

        container.MapDma(0x10000, Mmap(qemu, 1 * MiB), 64 * KiB);

        LabDevice nic = host.Device("nic");
        LabTceWindow window = Assert.Single(nic.TceWindows);
        Assert.Equal((0, 0UL, 0x7fff_ffffUL, 4 * KiB, 0x80000UL, 1), (window.Slot, window.Start, window.Last, window.PageSize, window.Entries, window.Levels));
        Assert.Equal(16UL, window.ValidEntries);
        Assert.Equal(8 * MiB, window.ChargedBytes);
        Assert.Equal(window.Id, Assert.Single(nic.TceWindows).Id);
        Assert.Null(nic.Domain);
    }

    [Fact]
    public void PinPages_WriteOnlyMapping_WriteOnlyPinSucceedsReadWritePinIsEperm()
    {
        var uuid = Guid.Parse("8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11");
        LabHost host = new LabHostBuilder().AddMdevDevice("vgpu", uuid, group: 20).AddProcess("qemu", 64 * MiB).Build();
        LabProcess qemu = host.Process("qemu");
        using var container = Container.Open(qemu.Syscalls);
        using var group = Group.Open(qemu.Syscalls, 20);
        group.SetContainer(container);
        container.SetIommu(VfioExtension.Type1v2Iommu);
        using Device vgpu = group.OpenDevice(uuid.ToString());
        container.MapDma(0, Mmap(qemu, 64 * KiB), 64 * KiB, DmaMapFlags.Write);
        LabDevice device = host.Device("vgpu");
        Span<ulong> pfns = stackalloc ulong[1];

        Assert.Equal(Errno.EPERM.AsReturn(), device.PinPages(0, 1, ReadWrite, pfns));
        Assert.Equal(Errno.EPERM.AsReturn(), device.PinPages(0, 1, write: true, pfns));
        Assert.Equal(1, device.PinPages(0, 1, MemoryProtection.Write, pfns));
        Assert.True(device.UnpinPages(0, 1));
    }
}
