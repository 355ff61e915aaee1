namespace VfioLab.Client;

/// <summary>One mmappable area of a region: offset and size within the region.</summary>
public readonly record struct SparseMmapArea(ulong Offset, ulong Size);
