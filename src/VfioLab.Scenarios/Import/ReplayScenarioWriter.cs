using System.Globalization;
using System.Text;
using VfioLab.Scenarios.Planning;

namespace VfioLab.Scenarios.Import;

/// <summary>
/// Writes a trace's replay as a v1 scenario: the host, one vfio-pci device in its group, one process (<c>qemu</c>)
/// with each process range the trace maps from mmapped where QEMU had it, the container opened as QEMU opens it
/// (group, TYPE1v2, device fd), then one <c>map_dma</c> or <c>unmap_dma</c> per traced call (the trace's
/// <see cref="QemuTraceEventKind.Map"/> and <see cref="QemuTraceEventKind.Unmap"/> events, in order), each under a
/// comment naming its trace line, skipped sections as comments where they fell, and a last check that the invariants
/// hold. With answers, each call expects the model's,
/// and a <c># differs:</c> comment says where QEMU got another.
/// </summary>
internal static class ReplayScenarioWriter
{
    /// <summary>Steps before the first replayed call besides the mmaps: open, open, set container, set IOMMU, device.</summary>
    public const int SetupSteps = 5;

    public static string Write(QemuTrace trace, ReplayHost host, int calls, IReadOnlyList<string>? answers, IReadOnlyList<ReplayDifference?>? differences)
    {
        QemuTraceImportOptions o = host.Options;
        var y = new StringBuilder();
        y.AppendLine(CultureInfo.InvariantCulture, $"# Replay of the QEMU trace {Quote(trace.File)}, written by vfiolab import qemu-trace (docs/import.md):");
        y.AppendLine(CultureInfo.InvariantCulture, $"# {calls} DMA call(s) from {trace.LineCount} line(s), {trace.IgnoredLines} line(s) naming no vfio DMA event passed over.");
        y.AppendLine("# Each call expects the model's answer; '# differs:' marks one where QEMU got another.");
        y.AppendLine("vfiolab: 1");
        y.AppendLine(CultureInfo.InvariantCulture, $"name: {host.Name}");
        y.AppendLine(CultureInfo.InvariantCulture, $"description: \"QEMU trace {Quote(Path.GetFileName(trace.File))} replayed: {calls} DMA call(s)\"");
        y.AppendLine("host:");
        y.AppendLine(CultureInfo.InvariantCulture, $"  memory: {ScenarioEmitter.Size(host.Memory)}");
        y.AppendLine(CultureInfo.InvariantCulture, $"  page_size: {ScenarioEmitter.Size(o.PageSize)}");
        y.AppendLine(CultureInfo.InvariantCulture, $"  iommu: {o.Iommu}");
        if (o.IommuPageSizes is { } sizes)
        {
            y.AppendLine(CultureInfo.InvariantCulture, $"  iommu_page_sizes: [{string.Join(", ", sizes.Select(ScenarioEmitter.Size))}]");
        }
        if (o.ApertureBits is int bits)
        {
            y.AppendLine(CultureInfo.InvariantCulture, $"  aperture: {{ start: 0, last: 0x{(bits == 64 ? ulong.MaxValue : (1UL << bits) - 1):x} }}");
        }
        y.AppendLine(CultureInfo.InvariantCulture, $"  kernel: {o.Kernel}");
        if (host.DmaEntryLimit is uint limit)
        {
            y.AppendLine(CultureInfo.InvariantCulture, $"  params: {{ dma_entry_limit: {limit} }}");
        }
        y.AppendLine("devices:");
        y.AppendLine(CultureInfo.InvariantCulture, $"  - {{ name: dev0, address: \"{host.Device}\", group: {host.Group} }}");
        y.AppendLine("processes:");
        y.AppendLine(CultureInfo.InvariantCulture, $"  - {{ name: qemu, memlock: {(o.Memlock is ulong m ? ScenarioEmitter.Size(m) : "unlimited")} }}");
        y.AppendLine("steps:");
        if (host.Ranges.Count > 0)
        {
            y.AppendLine("  # the process memory the trace maps from, where QEMU had it");
        }
        for (int i = 0; i < host.Ranges.Count; i++)
        {
            (ulong start, ulong end) = host.Ranges[i];
            y.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: {ScenarioEmitter.Size(end - start)}, at: 0x{start:x}, as: mem{i} }}");
        }
        y.AppendLine("  - open: { path: /dev/vfio/vfio, as: container }");
        y.AppendLine(CultureInfo.InvariantCulture, $"  - open: {{ path: /dev/vfio/{host.Group}, as: group }}");
        y.AppendLine("  - group_set_container: { fd: group, container: container }");
        y.AppendLine("  - set_iommu: { fd: container, type: VFIO_TYPE1v2_IOMMU }");
        y.AppendLine(CultureInfo.InvariantCulture, $"  - get_device_fd: {{ fd: group, name: \"{host.Device}\", as: device }}");
        int call = 0;
        foreach (QemuTraceEvent e in trace.Events)
        {
            if (e.Kind == QemuTraceEventKind.Skip)
            {
                y.AppendLine(CultureInfo.InvariantCulture, $"  # {Quote(e.Location.ToString())}: {e.Event} [0x{e.Iova:x}, +0x{e.Size:x}): skipped by the listener, nothing mapped");
                continue;
            }
            if (e.Kind is not (QemuTraceEventKind.Map or QemuTraceEventKind.Unmap))
            {
                continue;
            }
            int i = call++;
            y.AppendLine(CultureInfo.InvariantCulture, $"  # {Quote(e.Location.ToString())}: {e.Event} [0x{e.Iova:x}, +0x{e.Size:x}){(e.Vaddr is ulong v ? $" from 0x{v:x}" : string.Empty)}{(e.Result == 0 ? string.Empty : $" = {e.Result} ({QemuTraceImporter.ErrnoName(e.Result)})")}");
            if (differences?[i] is { } d)
            {
                y.AppendLine(CultureInfo.InvariantCulture, $"  # differs: QEMU got {d.Qemu}, the model answers {d.Model}{(d.Reason is null ? string.Empty : $": {Quote(d.Reason)}")}");
            }
            string expect = answers is null || answers[i] == "ok" ? string.Empty : $", expect: {answers[i]}";
            y.AppendLine(e.Kind == QemuTraceEventKind.Map
                ? string.Create(CultureInfo.InvariantCulture, $"  - map_dma: {{ fd: container, iova: 0x{e.Iova:x}, vaddr: 0x{e.Vaddr ?? 0:x}, size: 0x{e.Size:x}, flags: [{(e.ReadOnly ? "READ" : "READ, WRITE")}]{expect} }}")
                : string.Create(CultureInfo.InvariantCulture, $"  - unmap_dma: {{ fd: container, iova: 0x{e.Iova:x}, size: 0x{e.Size:x}{expect} }}"));
        }
        y.AppendLine("  - check: { invariants: clean }");
        return y.ToString();
    }

    /// <summary>Text from the trace or a path in a comment or a quoted string: one line, no quote or backslash.</summary>
    private static string Quote(string text) => ScenarioFile.Clean(text);
}
