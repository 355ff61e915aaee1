using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace VfioLab.Scenarios.Import;

/// <summary>
/// A QEMU vfio trace, read: the DMA maps and unmaps, skipped sections and device attaches its lines name, in order,
/// each with what QEMU got. Reads the log backend's lines (<c>-trace 'vfio_*'</c>, <c>-d trace:vfio_*</c>) with or
/// without the <c>PID@SECONDS:</c> prefix, the simple backend's as <c>simpletrace.py</c> prints them, the iommufd
/// backend's IOAS map and unmap, and the error reports of a failed <c>vfio_dma_map</c> or <c>vfio_dma_unmap</c>
/// (attached to the traced add or del they answer, or standing for the call when nothing traced it). Every other line
/// (other events, QEMU's messages, a journal's) is passed over. Formats: docs/import.md.
/// </summary>
public sealed partial class QemuTrace
{
    private QemuTrace(string file, IReadOnlyList<QemuTraceEvent> events, int lines, int ignored, uint? dmaEntryLimit)
    {
        File = file;
        Events = events;
        LineCount = lines;
        IgnoredLines = ignored;
        DmaEntryLimit = dmaEntryLimit;
    }

    /// <summary>The log's name, as the caller gave it (it prefixes every location).</summary>
    public string File { get; }

    /// <summary>What the trace says, in the order it says it.</summary>
    public IReadOnlyList<QemuTraceEvent> Events { get; }

    /// <summary>Lines in the log.</summary>
    public int LineCount { get; }

    /// <summary>Non-blank lines that name none of the events the import reads.</summary>
    public int IgnoredLines { get; }

    /// <summary>The DMA mappings the kernel allowed QEMU's container, as QEMU's warning "possibly running out of DMA
    /// mappings" reports them (its "Maximum possible DMA mappings: N", read from the kernel's <c>dma_avail</c> when the
    /// container was set up: the host's <c>dma_entry_limit</c>, less what was mapped already); null when the log has
    /// no such warning.</summary>
    public uint? DmaEntryLimit { get; }

    /// <summary>Reads a trace from text.</summary>
    /// <param name="text">The log.</param>
    /// <param name="file">Its name, for locations.</param>
    /// <exception cref="ScenarioParseException">A line names an event the import reads but its arguments do not read
    /// as QEMU prints them (a missing or non-hex number, an end below the start, text after the arguments); the
    /// message is <c>FILE:LINE:COLUMN: reason</c>.</exception>
    public static QemuTrace Parse(string text, string file)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(file);
        var events = new List<QemuTraceEvent>();
        int lineNumber = 0;
        int ignored = 0;
        uint? dmaEntryLimit = null;
        foreach (string raw in text.Split('\n'))
        {
            lineNumber++;
            string line = raw.TrimEnd('\r', ' ', '\t');
            if (line.Length == 0)
            {
                continue;
            }
            if (DmaMappingsWarning().Match(line) is { Success: true } warning)
            {
                Group n = warning.Groups["n"];
                dmaEntryLimit = uint.TryParse(n.ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out uint limit)
                    ? limit
                    : throw new ScenarioParseException(new SourceLocation(file, lineNumber, n.Index + 1), $"the DMA mappings QEMU reports, {n.Value}, do not fit in dma_entry_limit (32 bits)");
                ignored++;
                continue;
            }
            if (TraceLineReader.Read(line, file, lineNumber) is not { } read)
            {
                ignored++;
                continue;
            }
            QemuTraceEvent ev = ToEvent(read.Format, new SourceLocation(file, lineNumber, read.Column), read.Args);
            if (read.Format.ErrorReport && Answers(events, ev) is int answered)
            {
                events[answered] = events[answered] with { Result = ev.Result };
                continue;
            }
            events.Add(ev);
        }
        if (text.EndsWith('\n'))
        {
            lineNumber--;
        }
        return new QemuTrace(file, events, lineNumber, ignored, dmaEntryLimit);
    }

    /// <summary>Reads a trace file (UTF-8; a byte that is not is replaced, since a log is not the import's to
    /// refuse for its encoding).</summary>
    /// <exception cref="ScenarioParseException">A malformed line (see <see cref="Parse"/>), or the file cannot be
    /// read (located at its line 1).</exception>
    public static QemuTrace Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string text;
        try
        {
            text = System.IO.File.ReadAllText(path, new UTF8Encoding(false, false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new ScenarioParseException(new SourceLocation(path, 1, 1), $"cannot read the trace: {e.Message}");
        }
        return Parse(text, path);
    }

    /// <summary>The traced add or del an error report answers: the last map or unmap before it, when it is of the
    /// same kind and range, came from the listener (iommufd traces its own result) and has no answer yet.</summary>
    private static int? Answers(List<QemuTraceEvent> events, QemuTraceEvent report)
    {
        for (int i = events.Count - 1; i >= 0; i--)
        {
            QemuTraceEvent e = events[i];
            if (e.Kind is not (QemuTraceEventKind.Map or QemuTraceEventKind.Unmap))
            {
                continue;
            }
            bool same = e.Kind == report.Kind && e.Iova == report.Iova && e.Size == report.Size && e.Result == 0
                && e.Event.StartsWith("vfio_listener_", StringComparison.Ordinal);
            return same ? i : null;
        }
        return null;
    }

    /// <summary>QEMU's warning when virtio-mem may need more DMA mappings than the container allows (hw/vfio,
    /// <c>warn_report</c>, later an error): "Maximum possible DMA mappings: N", or in its first version "Maximum number
    /// of DMA mappings: N".</summary>
    [GeneratedRegex("possibly running out of DMA mappings\\..*Maximum (?:possible|number of) DMA mappings: (?<n>[0-9]+)")]
    private static partial Regex DmaMappingsWarning();

    private static QemuTraceEvent ToEvent(TraceEventFormat format, SourceLocation at, Dictionary<string, TraceLineReader.Arg> args)
    {
        switch (format.Name)
        {
            case "vfio_listener_region_add_ram":
                return new QemuTraceEvent(at, format.Kind, format.Name, args["iova_start"].Value,
                    Length(at, format, args["iova_start"], args["iova_end"]), NonNull(args["vaddr"].Value), 0);
            case "vfio_listener_region_del":
            case "vfio_listener_region_add_skip":
            case "vfio_listener_region_del_skip":
            case "vfio_listener_region_skip":
                return new QemuTraceEvent(at, format.Kind, format.Name, args["start"].Value, Length(at, format, args["start"], args["end"]), null, 0);
            case "vfio_attach_device":
                return new QemuTraceEvent(at, format.Kind, format.Name, 0, 0, null, 0, args["name"].Text, ToInt(args["group_id"].Value));
            default:
                ulong? vaddr = format.Kind == QemuTraceEventKind.Map ? NonNull(args["vaddr"].Value) : null;
                bool readOnly = args.TryGetValue("readonly", out TraceLineReader.Arg ro) && ro.Value != 0;
                return new QemuTraceEvent(at, format.Kind, format.Name, args["iova"].Value, args["size"].Value, vaddr, ToInt(args["ret"].Value), ReadOnly: readOnly);
        }
    }

    /// <summary>The listener traces [start, end] inclusive.</summary>
    private static ulong Length(SourceLocation at, TraceEventFormat format, TraceLineReader.Arg start, TraceLineReader.Arg end)
    {
        if (end.Value < start.Value)
        {
            throw new ScenarioParseException(at with { Column = end.Column }, $"{format.Name}: end {end.Text} is below start {start.Text}");
        }
        if (start.Value == 0 && end.Value == ulong.MaxValue)
        {
            throw new ScenarioParseException(at with { Column = end.Column }, $"{format.Name}: [{start.Text}, {end.Text}] is 2^64 bytes, more than a size can say");
        }
        return end.Value - start.Value + 1;
    }

    private static ulong? NonNull(ulong vaddr) => vaddr == 0 ? null : vaddr;

    /// <summary>A C int as printed: a decimal, or (the simple backend) its 64-bit or 32-bit two's complement in hex.</summary>
    private static int ToInt(ulong value) => value <= uint.MaxValue ? (int)(uint)value : (int)(long)value;
}
