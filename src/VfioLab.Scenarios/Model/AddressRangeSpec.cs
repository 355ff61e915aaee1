namespace VfioLab.Scenarios.Model;

/// <summary>An inclusive address range from a scenario (<c>aperture: { start, last }</c>); <c>Last</c> may be 2^64-1.</summary>
internal sealed record AddressRangeSpec(ulong Start, ulong Last, SourceLocation Location);
