namespace VfioLab.Scenarios.Planning;

/// <summary>The QEMU machine type whose guest-physical layout the planner follows (hw/i386/pc_q35.c, pc_piix.c,
/// hw/arm/virt.c).</summary>
public enum MachineType
{
    /// <summary>x86 <c>q35</c>: RAM below 4 GiB stops at 2 GiB when the guest has 2.75 GiB or more (the MMCONFIG window
    /// at 0xb0000000 and the 32-bit PCI hole follow), else at 2.75 GiB; the rest starts at 4 GiB.</summary>
    Q35,

    /// <summary>x86 <c>pc</c> (i440fx): RAM below 4 GiB stops at 3 GiB when the guest has 3.5 GiB or more (gigabyte
    /// alignment of today's machine versions), else at 3.5 GiB; the rest starts at 4 GiB.</summary>
    Pc,

    /// <summary>Arm <c>virt</c>: one RAM block from 1 GiB.</summary>
    Virt,
}
