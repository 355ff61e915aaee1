namespace VfioLab.Scenarios.Planning;

/// <summary>
/// The guest-physical layout QEMU builds for a machine type, reduced to what its VFIO memory listener maps
/// (hw/vfio/listener.c: RAM and RAM-device sections; ROM, MMIO and the legacy VGA window are skipped):
/// x86 RAM below 4 GiB in two pieces around the legacy VGA window [0xa0000, 0xc0000) up to the PCI hole
/// (hw/i386/pc_q35.c, pc_piix.c: <c>lowmem</c>), the rest from 4 GiB; Arm virt RAM from 1 GiB in one piece
/// (hw/arm/virt.c). The device-memory region (virtio-mem) starts at the first GiB boundary after RAM
/// (hw/i386/pc.c); 64-bit BARs are placed by firmware above that, each naturally aligned.
/// </summary>
internal static class GuestLayout
{
    public const ulong FourG = 1UL << 32;
    public const ulong VgaStart = 0xa0000;
    public const ulong VgaEnd = 0xc0000;
    public const ulong VirtRamBase = 1UL << 30;

    /// <summary>Where guest RAM ends below 4 GiB (<c>lowmem</c>) on x86.</summary>
    public static ulong LowMemTop(MachineType machine, ulong ram) => machine switch
    {
        MachineType.Q35 => ram >= 0xb0000000 ? 0x80000000 : Math.Min(ram, 0xb0000000),
        MachineType.Pc => ram >= 0xe0000000 ? 0xc0000000 : Math.Min(ram, 0xe0000000),
        _ => 0,
    };

    /// <summary>The RAM sections: (IOVA, size, offset into the RAM block, label).</summary>
    public static List<(ulong Iova, ulong Size, ulong Offset, string Label)> RamSections(MachineType machine, ulong ram)
    {
        var sections = new List<(ulong, ulong, ulong, string)>();
        if (machine == MachineType.Virt)
        {
            sections.Add((VirtRamBase, ram, 0, "ram"));
            return sections;
        }
        ulong low = LowMemTop(machine, ram);
        sections.Add((0, Math.Min(low, VgaStart), 0, "ram below the VGA window"));
        if (low > VgaEnd)
        {
            sections.Add((VgaEnd, low - VgaEnd, VgaEnd, "ram below 4G"));
        }
        if (ram > low)
        {
            sections.Add((FourG, ram - low, low, "ram above 4G"));
        }
        return sections;
    }

    /// <summary>The first guest-physical address past RAM.</summary>
    public static ulong RamEnd(MachineType machine, ulong ram) => machine == MachineType.Virt
        ? VirtRamBase + ram
        : ram > LowMemTop(machine, ram) ? FourG + (ram - LowMemTop(machine, ram)) : FourG;

    /// <summary>Where the device-memory region (virtio-mem) starts.</summary>
    public static ulong DeviceMemoryBase(MachineType machine, ulong ram) => AlignUp(RamEnd(machine, ram), 1UL << 30);

    public static ulong AlignUp(ulong value, ulong align) => (value + align - 1) & ~(align - 1);
}
