namespace VfioLab.Scenarios.Planning;

/// <summary>What libvirt would set RLIMIT_MEMLOCK to for the same VM (src/qemu/qemu_domain.c,
/// <c>qemuDomainGetMemLockLimitBytes</c>: for a VM with VFIO devices, the guest's total memory times a factor, plus
/// 1 GiB for the VMM's own needs and MMIO; the factor is 1, or, with a vIOMMU, the number of VFIO devices, each having
/// an address space that maps all of memory, since libvirt 8.7.0), against what the plan needs.</summary>
/// <param name="LimitBytes">libvirt's limit.</param>
/// <param name="Formula">The formula with its numbers.</param>
/// <param name="NeededBytes">The plan's locked_vm need.</param>
/// <param name="Verdict">Where libvirt over- or under-provisions, and by how much.</param>
public sealed record LibvirtComparison(ulong LimitBytes, string Formula, ulong NeededBytes, string Verdict)
{
    /// <summary>libvirt's limit minus the need: positive when it over-provisions, negative when the VM would fail.</summary>
    public decimal MarginBytes => (decimal)LimitBytes - NeededBytes;
}
