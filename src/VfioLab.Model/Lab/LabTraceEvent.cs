namespace VfioLab.Lab;

/// <summary>
/// One structured event of the model: a system call, a pin or unpin, a charge, an IOMMU map or unmap, a notifier
/// call, a zap, a fault, a DMA access, deferred work. <see cref="Kind"/> names it, one of
/// <see cref="TraceKinds"/> (such as <c>pin</c>, <c>charge</c>, <c>iommu_map</c>, <c>map_dma</c>); <see cref="Fields"/> carry its values (numbers as <see cref="ulong"/> or <see cref="long"/>,
/// names as strings, flags as <see cref="bool"/>).
/// </summary>
/// <param name="Sequence">The event's position in the host's stream, from 1.</param>
/// <param name="Kind">What happened: one of <see cref="TraceKinds.All"/>.</param>
/// <param name="Pid">The process on whose behalf it happened (0 for the host or a device).</param>
/// <param name="Fields">The event's values, in the order the model emitted them.</param>
public sealed record LabTraceEvent(long Sequence, string Kind, int Pid, IReadOnlyList<KeyValuePair<string, object>> Fields);
