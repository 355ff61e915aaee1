namespace VfioLab.Examples.Tests;

/// <summary>One RAM section of a guest's physical address space, as QEMU's memory API hands it to a listener: the
/// guest-physical range (which is the IOVA when the guest sees no vIOMMU) and the host virtual address backing it.</summary>
/// <param name="GuestPhys">First guest-physical address (the IOVA).</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="HostVirt">The VMM's virtual address of the section's first byte.</param>
/// <param name="ReadOnly">A ROM section: the device may read it but not write it.</param>
internal sealed record GuestRamSection(ulong GuestPhys, ulong Size, ulong HostVirt, bool ReadOnly = false);
