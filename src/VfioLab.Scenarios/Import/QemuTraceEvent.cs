namespace VfioLab.Scenarios.Import;

/// <summary>
/// One line of a QEMU vfio trace that the import understood (<see cref="QemuTrace"/>): a DMA map or unmap, a skipped
/// section, or a device attach, with the addresses it names and what QEMU got back.
/// </summary>
/// <param name="Location">Where the line is: the log's name, the line and the column where the event's name starts.</param>
/// <param name="Kind">What the VMM did.</param>
/// <param name="Event">The trace event's name as QEMU spells it (<c>vfio_listener_region_add_ram</c>), or the
/// function an error report names (<c>vfio_dma_map</c>).</param>
/// <param name="Iova">The first IOVA of the range (a skip's first guest address; 0 for an attach).</param>
/// <param name="Size">The range's length in bytes (the listener traces inclusive ends; this is end - start + 1;
/// 0 for an attach).</param>
/// <param name="Vaddr">The process address a map reads from (null: not a map, or <c>(nil)</c>).</param>
/// <param name="Result">What QEMU got: 0, or the negative errno an error report (or iommufd's own trace) gave
/// for this map or unmap.</param>
/// <param name="Device">The device's name on an attach (<c>0000:01:00.0</c>), else null.</param>
/// <param name="Group">The IOMMU group on an attach, else null.</param>
/// <param name="ReadOnly">A map the device may only read (iommufd traces it; the listener's lines do not say, and
/// are replayed read-write).</param>
public sealed record QemuTraceEvent(
    SourceLocation Location,
    QemuTraceEventKind Kind,
    string Event,
    ulong Iova,
    ulong Size,
    ulong? Vaddr,
    int Result,
    string? Device = null,
    int? Group = null,
    bool ReadOnly = false);
