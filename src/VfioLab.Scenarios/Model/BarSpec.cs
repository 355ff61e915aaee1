namespace VfioLab.Scenarios.Model;

/// <summary>A PCI BAR of a device: index 0-5, a power-of-two size, prefetchable, 64-bit (default true).</summary>
internal sealed record BarSpec(int Index, ulong Size, bool Prefetchable, bool Is64Bit, SourceLocation Location);
