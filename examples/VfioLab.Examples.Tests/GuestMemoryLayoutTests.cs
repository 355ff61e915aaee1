using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Lab;

namespace VfioLab.Examples.Tests;

/// <summary>
/// A VMM's memory listener maps a q35 guest for a passthrough GPU, as QEMU does at machine start: 4 GiB of guest RAM
/// on 2 MiB huge pages, split by the 32-bit PCI hole into 2 GiB below 4 GiB and 2 GiB above, the VGA window
/// (0xa0000-0xfffff) left out, the BIOS ROM read-only just below 4 GiB. Asserts what sizing a VM depends on:
/// <c>locked_vm</c> against RLIMIT_MEMLOCK and the DMA slots left (<c>dma_avail</c>).
/// </summary>
public sealed class GuestMemoryLayoutTests
{
    private const ulong GuestRam = 4 * Size.GiB;
    private const ulong LowRamTop = 0x8000_0000;
    private const ulong VgaHoleStart = 0xa0000;
    private const ulong VgaHoleEnd = 0x10_0000;
    private const ulong BiosSize = 256 * Size.KiB;
    private const ulong BiosBase = 0x1_0000_0000 - BiosSize;
    private const ulong HighRamBase = 0x1_0000_0000;
    private const ulong MsiWindow = 0xfee0_0000;

    /// <summary>Every mapped byte is pinned and charged once: guest RAM minus the 384 KiB VGA hole, plus the ROM.</summary>
    private const ulong ExpectedLockedVm = GuestRam - (VgaHoleEnd - VgaHoleStart) + BiosSize;

    private static LabHost Host() => new LabHostBuilder()
        .WithMemory(8 * Size.GiB)
        .WithIommu(IommuKind.VtD)
        .AddPciDevice("gpu", "0000:01:00.0", d => d.Bar(0, 16 * Size.MiB).Bar(2, 256 * Size.MiB, prefetchable: true).Group(1))
        // libvirt sets RLIMIT_MEMLOCK to guest RAM plus 1 GiB for a VM with a passthrough device.
        .AddProcess("qemu", memlockBytes: GuestRam + Size.GiB)
        .Build();

    private static (Container Container, Group Group, Device Gpu) OpenGpu(LabProcess qemu)
    {
        var container = Container.Open(qemu.Syscalls);
        var group = Group.Open(qemu.Syscalls, 1);
        group.SetContainer(container);
        Assert.Equal(VfioExtension.Type1v2Iommu, container.SelectIommu());
        return (container, group, group.OpenDevice("0000:01:00.0"));
    }

    private static ulong Mmap(LabProcess p, ulong size, MemoryProtection prot, MmapFlags flags)
    {
        long address = p.Syscalls.Mmap(0, size, prot, flags, -1, 0);
        Assert.True(address > 0, $"mmap 0x{size:x}: {address}");
        return (ulong)address;
    }

    private static GuestRamSection[] Q35Sections(ulong ram, ulong bios) =>
    [
        new(0, VgaHoleStart, ram),
        new(VgaHoleEnd, LowRamTop - VgaHoleEnd, ram + VgaHoleEnd),
        new(BiosBase, BiosSize, bios, ReadOnly: true),
        new(HighRamBase, GuestRam - LowRamTop, ram + LowRamTop),
    ];

    [Fact]
    public void RegionAdd_Q35Layout_ChargesMappedBytesAndTakesFourSlots()
    {
        LabHost host = Host();
        LabProcess qemu = host.Process("qemu");
        (Container container, Group group, Device gpu) = OpenGpu(qemu);
        ulong ram = Mmap(qemu, GuestRam, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge2MiB);
        ulong bios = Mmap(qemu, BiosSize, MemoryProtection.Read, MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate);
        var listener = new VfioMemoryListener(container);

        foreach (GuestRamSection s in Q35Sections(ram, bios))
        {
            listener.RegionAdd(s);
        }

        Assert.Equal(ExpectedLockedVm, qemu.LockedVmBytes);
        Assert.Equal(0xfffe_0000UL, qemu.LockedVmBytes);
        Assert.Equal(ExpectedLockedVm / Size.Page, host.PinnedPages);
        IommuInfo info = container.GetIommuInfo();
        Assert.Equal(65531U, info.DmaAvail);
        LabContainer inspected = Assert.Single(host.Containers);
        Assert.Equal(65531UL, inspected.DmaAvail);
        Assert.Equal(
            [(0UL, VgaHoleStart, true), (VgaHoleEnd, LowRamTop - VgaHoleEnd, true), (BiosBase, BiosSize, false), (HighRamBase, 2 * Size.GiB, true)],
            inspected.Mappings.Select(m => (m.Iova, m.Size, m.Writable)));
        Assert.All(inspected.Mappings, m => Assert.Equal(qemu.Pid, m.OwnerPid));
        // The VGA window is MMIO the VMM emulates, not RAM: a device's DMA there faults.
        Assert.Equal(DmaFaultReason.NotMapped, host.Device("gpu").Translate(VgaHoleStart).FaultReason);
        gpu.Dispose();
        group.Dispose();
        container.Dispose();
    }

    [Fact]
    public void RegionAdd_MsiWindow_ThrowsEinvalAndChangesNothing()
    {
        LabHost host = Host();
        LabProcess qemu = host.Process("qemu");
        (Container container, _, _) = OpenGpu(qemu);
        ulong ram = Mmap(qemu, 4 * Size.MiB, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge2MiB);
        var listener = new VfioMemoryListener(container);
        string before = host.Digest();

        // VT-d reserves the x86 interrupt window: GET_INFO's usable ranges skip it, and MAP_DMA refuses it.
        IommuInfo info = container.GetIommuInfo();
        VfioException e = Assert.Throws<VfioException>(() => listener.RegionAdd(new GuestRamSection(MsiWindow, 2 * Size.MiB, ram)));

        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal([new IovaWindow(0, MsiWindow - 1), new IovaWindow(0xfef0_0000, 0xffff_ffff_ffff)], info.IovaRanges);
        Assert.Empty(listener.Mapped);
        Assert.Equal(before, host.Digest());
        Assert.Equal(0UL, qemu.LockedVmBytes);
        Assert.Equal(65535U, container.GetIommuInfo().DmaAvail);
    }

    [Theory]
    [InlineData(0x20_0000UL, 2 * Size.MiB, 1UL)]
    [InlineData(0x10_0000UL, Size.Page, 512UL)]
    public void RegionAdd_HugePageAtIova_UsesLargeIoptesOnlyWhenAligned(ulong iova, ulong ioptePage, ulong entries)
    {
        LabHost host = Host();
        LabProcess qemu = host.Process("qemu");
        (Container container, _, _) = OpenGpu(qemu);
        ulong ram = Mmap(qemu, 2 * Size.MiB, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge2MiB);

        new VfioMemoryListener(container).RegionAdd(new GuestRamSection(iova, 2 * Size.MiB, ram));

        // A 2 MiB IOPTE needs IOVA and physical address aligned alike; a section at 1 MiB costs 512 entries.
        LabDevice gpu = host.Device("gpu");
        Assert.Equal(ioptePage, gpu.Translate(iova + 0x1000).PageSize);
        Assert.Equal(entries, gpu.IommuEntries);
        Assert.Equal(2 * Size.MiB, qemu.LockedVmBytes);
    }

    [Fact]
    public void Teardown_AfterGpuDmaIntoGuestRam_ReturnsLockedVmToZeroAndLeavesNoViolation()
    {
        LabHost host = Host();
        LabProcess qemu = host.Process("qemu");
        (Container container, Group group, Device gpu) = OpenGpu(qemu);
        ulong ram = Mmap(qemu, GuestRam, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge2MiB);
        ulong bios = Mmap(qemu, BiosSize, MemoryProtection.Read, MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate);
        var listener = new VfioMemoryListener(container);
        foreach (GuestRamSection s in Q35Sections(ram, bios))
        {
            listener.RegionAdd(s);
        }
        // The GPU writes a descriptor into high RAM; the guest (the VMM's mapping) sees it.
        Assert.True(host.Device("gpu").DmaWrite(HighRamBase + 0x1000, [0xde, 0xad, 0xbe, 0xef]).Ok);
        byte[] seen = new byte[4];
        Assert.Equal(0, qemu.Syscalls.ReadMemory(ram + LowRamTop + 0x1000, seen));
        Assert.Equal(new byte[] { 0xde, 0xad, 0xbe, 0xef }, seen);
        Assert.Equal(DmaFaultReason.WriteDenied, host.Device("gpu").DmaWrite(BiosBase, [0]).FaultReason);

        // Shutdown as QEMU does it: the device fd goes first, then each section is removed.
        gpu.Dispose();
        ulong unmapped = 0;
        foreach (GuestRamSection s in listener.Mapped.ToArray())
        {
            unmapped += listener.RegionDel(s);
        }
        group.Dispose();
        container.Dispose();

        Assert.Equal(ExpectedLockedVm, unmapped);
        Assert.Equal(0UL, qemu.LockedVmBytes);
        Assert.Equal(0UL, host.PinnedPages);
        Assert.Empty(host.Containers);
        Assert.Empty(host.CheckInvariants());
    }
}
