namespace VfioLab.Diagnostics;

/// <summary>
/// One structured event: a system call, or an internal step (pin, unpin, charge, iommu map/unmap,
/// notifier call, zap, fault, DMA access, invariant violation). Fields are name/value pairs whose
/// values are numbers, strings or booleans; the CLI writes each event as one JSON line.
/// </summary>
internal sealed record TraceEvent(long Sequence, string Kind, int Pid, IReadOnlyList<KeyValuePair<string, object>> Fields);
