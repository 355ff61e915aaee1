namespace VfioLab.Scenarios.Planning;

/// <summary>One device the VM is given: a passthrough PCI function with its memory BARs (each mapped into the
/// container for peer-to-peer, as QEMU maps every mmap'd BAR), or a mediated device (a vGPU) whose vendor driver pins
/// <see cref="PinnedBytes"/> of guest memory through the VFIO core.</summary>
/// <param name="Name">The device's name (a scenario identifier).</param>
/// <param name="BarSizes">The memory BARs' sizes, each a power of two of at least 4 KiB; empty for a mediated device.</param>
/// <param name="Mediated">A mediated device: an emulated IOMMU group, no IOMMU domain, pages pinned on demand.</param>
/// <param name="PinnedBytes">Mediated devices: the guest memory the vendor driver keeps pinned (its working set).</param>
public sealed record PlannedDevice(string Name, IReadOnlyList<ulong> BarSizes, bool Mediated = false, ulong PinnedBytes = 0);
