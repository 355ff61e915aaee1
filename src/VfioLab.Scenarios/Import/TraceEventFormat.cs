namespace VfioLab.Scenarios.Import;

/// <summary>
/// One trace event or error report the import reads: the name QEMU prints, what it means, and its arguments as the
/// log backend prints them (<see cref="Pattern"/>: literal text with <c>{arg:type}</c> holes named as the event's
/// arguments are in QEMU's <c>trace-events</c>, which is also how the simple backend's <c>simpletrace.py</c> names
/// them). Types: <c>x</c> a <c>0x</c> hex number, <c>d</c> a signed decimal, <c>p</c> a pointer (<c>0x…</c> or
/// <c>(nil)</c>), <c>s</c> a word, <c>r</c> text up to the next <c>)</c>. A space matches any run of blanks.
/// </summary>
/// <param name="Name">The event's name, or the function an error report names.</param>
/// <param name="Kind">What the line means.</param>
/// <param name="Pattern">The arguments as printed after the name.</param>
/// <param name="ErrorReport">The name is followed by <c>(</c> (an <c>error_report</c> of a failed call), not by a
/// blank, and there is no simple-backend form.</param>
internal sealed record TraceEventFormat(string Name, QemuTraceEventKind Kind, string Pattern, bool ErrorReport = false)
{
    /// <summary>
    /// Every line form the import reads, from QEMU's hw/vfio/trace-events, backends/trace-events and the
    /// error reports of hw/vfio: the listener's map and unmap of RAM sections (the same text across versions), its
    /// skips (one event per direction in older versions, later folded into <c>vfio_listener_region_skip</c> with the
    /// direction as a string), the iommufd backend's IOAS map and unmap (with their return value), the device attach
    /// that names the group, and the error reports QEMU prints when a map or unmap fails (<c>vfio_dma_map</c>,
    /// renamed <c>vfio_container_dma_map</c> when the container was split into backends).
    /// </summary>
    public static readonly TraceEventFormat[] All =
    [
        new("vfio_listener_region_add_ram", QemuTraceEventKind.Map, "region_add [ram] {iova_start:x} - {iova_end:x} [{vaddr:p}]"),
        new("vfio_listener_region_del", QemuTraceEventKind.Unmap, "region_del {start:x} - {end:x}"),
        new("vfio_listener_region_add_skip", QemuTraceEventKind.Skip, "SKIPPING region_add {start:x} - {end:x}"),
        new("vfio_listener_region_del_skip", QemuTraceEventKind.Skip, "SKIPPING region_del {start:x} - {end:x}"),
        new("vfio_listener_region_skip", QemuTraceEventKind.Skip, "SKIPPING {name:s} {start:x} - {end:x}"),
        new("iommufd_backend_map_dma", QemuTraceEventKind.Map, "iommufd={iommufd:d} ioas={ioas:d} iova={iova:x} size={size:x} addr={vaddr:p} readonly={readonly:d} ({ret:d})"),
        new("iommufd_backend_unmap_dma", QemuTraceEventKind.Unmap, "iommufd={iommufd:d} ioas={ioas:d} iova={iova:x} size={size:x} ({ret:d})"),
        new("iommufd_backend_unmap_dma_non_exist", QemuTraceEventKind.Unmap, "Unmap nonexistent mapping: iommufd={iommufd:d} ioas={ioas:d} iova={iova:x} size={size:x} ({ret:d})"),
        new("vfio_attach_device", QemuTraceEventKind.AttachDevice, "({name:s}) group {group_id:d}"),
        new("vfio_dma_map", QemuTraceEventKind.Map, "{container:p}, {iova:x}, {size:x}, {vaddr:p}) = {ret:d} ({message:r})", ErrorReport: true),
        new("vfio_container_dma_map", QemuTraceEventKind.Map, "{container:p}, {iova:x}, {size:x}, {vaddr:p}) = {ret:d} ({message:r})", ErrorReport: true),
        new("vfio_dma_unmap", QemuTraceEventKind.Unmap, "{container:p}, {iova:x}, {size:x}) = {ret:d} ({message:r})", ErrorReport: true),
        new("vfio_container_dma_unmap", QemuTraceEventKind.Unmap, "{container:p}, {iova:x}, {size:x}) = {ret:d} ({message:r})", ErrorReport: true),
    ];
}
