namespace VfioLab.Pci;

/// <summary>A BAR a device asks for when it is placed in a <see cref="PciTopology"/> (what the
/// scenario's <c>bars:</c> entry says and what sizing a BAR register reveals to the PCI core).</summary>
internal readonly record struct PciBarRequest(int Index, ulong Size, bool Prefetchable = false, bool Is64Bit = true);
