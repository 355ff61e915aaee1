using System.Text.RegularExpressions;
using VfioLab.Abi;

namespace VfioLab.Scenarios.Import;

/// <summary>
/// Turns a QEMU vfio trace into a scenario that replays its DMA calls on the model
/// (<c>vfiolab import qemu-trace</c>, docs/import.md): every traced map and unmap in order, on a host taken from
/// the options or guessed from the trace. The replay runs once on the model while it is written, so each call
/// expects the model's answer, and the calls where that is not what QEMU got are <see cref="QemuTraceReplay.Differences"/>.
/// </summary>
public static partial class QemuTraceImporter
{
    private const ulong GiB = 1UL << 30;

    /// <summary>What is wrong with <paramref name="options"/>, one message each; empty when nothing is.</summary>
    public static IReadOnlyList<string> Validate(QemuTraceImportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (options.Name is { } name && !NamePattern().IsMatch(name))
        {
            errors.Add($"scenario name '{name}' must be letters, digits, '.', '_' or '-'");
        }
        if (options.PageSize is not (4096 or 16384 or 65536))
        {
            errors.Add($"host page size 0x{options.PageSize:x} is not 4KiB, 16KiB or 64KiB");
        }
        if (options.Iommu is not ("vt-d" or "amd-vi" or "smmu-v3"))
        {
            errors.Add($"IOMMU '{options.Iommu}' is not vt-d, amd-vi or smmu-v3 (the replay is type1's)");
        }
        if (!VfioLab.Lab.KernelProfiles.All.Contains(options.Kernel))
        {
            errors.Add($"kernel profile '{options.Kernel}' is not one of {string.Join(", ", VfioLab.Lab.KernelProfiles.All)}");
        }
        if (options.ApertureBits is int bits && bits is < 12 or > 64)
        {
            errors.Add($"aperture width {bits} bits is outside 12..64");
        }
        if (options.IommuPageSizes is { } sizes && (sizes.Count == 0 || sizes.Any(s => s == 0 || (s & (s - 1)) != 0)))
        {
            errors.Add("IOMMU page sizes must be one or more powers of two");
        }
        if (options.Device is { } device && !PciAddressPattern().IsMatch(device))
        {
            errors.Add($"device '{device}' is not a PCI address (0000:01:00.0)");
        }
        if (options.Group is int group && group < 0)
        {
            errors.Add($"IOMMU group {group} is negative");
        }
        if (options.Memory is 0)
        {
            errors.Add("host memory cannot be 0");
        }
        return errors;
    }

    /// <summary>Replays <paramref name="trace"/> on the model and writes the scenario that does so.</summary>
    /// <param name="trace">The trace, read.</param>
    /// <param name="options">The host; null: every default and guess.</param>
    /// <returns>The scenario and where the model's answers differ from QEMU's.</returns>
    /// <exception cref="ArgumentException"><paramref name="options"/> are not valid (<see cref="Validate"/>).</exception>
    /// <exception cref="ScenarioParseException">The trace cannot be replayed as written: a map whose process range
    /// wraps past 2^64, or a host the model refuses to build or set up (more memory than its budget, a process range
    /// outside the simulated address space), located at the trace line concerned (line 1 for the host).</exception>
    public static QemuTraceReplay Import(QemuTrace trace, QemuTraceImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(trace);
        options ??= new QemuTraceImportOptions();
        IReadOnlyList<string> errors = Validate(options);
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }
        QemuTraceEvent[] calls = [.. trace.Events.Where(e => e.Kind is QemuTraceEventKind.Map or QemuTraceEventKind.Unmap)];
        ReplayHost host = SettleHost(trace, options, calls);

        string first = ReplayScenarioWriter.Write(trace, host, calls.Length, null, null);
        IReadOnlyList<StepReport> steps = RunOnModel(trace, first);
        RefuseFailedSetUp(trace, host, calls, steps);
        int offset = host.Ranges.Count + ReplayScenarioWriter.SetupSteps;
        var answers = new string[calls.Length];
        var differences = new ReplayDifference?[calls.Length];
        for (int i = 0; i < calls.Length; i++)
        {
            StepReport step = steps[offset + i];
            QemuTraceEvent e = calls[i];
            answers[i] = step.Errno ?? "ok";
            string qemu = e.Result == 0 ? "ok" : ErrnoName(e.Result);
            if (qemu != answers[i])
            {
                string? reason = step.Result is { } r && r.TryGet("message", out ResultValue? m) && m is not null ? m.Text : null;
                differences[i] = new ReplayDifference(e.Location, Describe(e), qemu, answers[i], reason);
            }
        }
        string yaml = ReplayScenarioWriter.Write(trace, host, calls.Length, answers, differences);
        return new QemuTraceReplay(yaml, calls.Length, [.. differences.OfType<ReplayDifference>()]);
    }

    /// <summary>A negative errno as Linux names it (<c>-22</c>: <c>EINVAL</c>); an unknown one as its number.</summary>
    internal static string ErrnoName(int result)
    {
        int errno = -result;
        return Enum.IsDefined(typeof(Errno), errno) && errno != 0 ? ((Errno)errno).ToString() : $"errno {errno}";
    }

    private static string Describe(QemuTraceEvent e) => e.Kind == QemuTraceEventKind.Map
        ? $"map_dma iova 0x{e.Iova:x} size 0x{e.Size:x} vaddr 0x{e.Vaddr ?? 0:x}"
        : $"unmap_dma iova 0x{e.Iova:x} size 0x{e.Size:x}";

    private static IReadOnlyList<StepReport> RunOnModel(QemuTrace trace, string yaml)
    {
        string file = $"{trace.File} (replay)";
        try
        {
            ScenarioDocument doc = ScenarioDocument.Parse(yaml, file);
            return ScenarioRunner.Prepare(doc, new RunOptions()).Execute().Steps;
        }
        catch (ScenarioParseException e) when (e.File == file)
        {
            throw new ScenarioParseException(new SourceLocation(trace.File, 1, 1), $"the replay's host cannot be built: {e.Reason}");
        }
    }

    /// <summary>A replay whose set-up failed says nothing about the trace: refused, at the first map reading from a
    /// range that could not be mmapped, or at the log's first line.</summary>
    private static void RefuseFailedSetUp(QemuTrace trace, ReplayHost host, QemuTraceEvent[] calls, IReadOnlyList<StepReport> steps)
    {
        for (int i = 0; i < host.Ranges.Count + ReplayScenarioWriter.SetupSteps; i++)
        {
            StepReport step = steps[i];
            if (step.Passed)
            {
                continue;
            }
            string answer = step.Errno ?? string.Join("; ", step.Problems);
            if (i < host.Ranges.Count)
            {
                (ulong start, ulong end) = host.Ranges[i];
                QemuTraceEvent e = calls.First(c => c.Vaddr is ulong v && host.RangeOf(v) == i);
                throw new ScenarioParseException(e.Location, $"{e.Event}: the process range [0x{start:x}, 0x{end:x}) it maps from cannot be mmapped on the replay's host ({step.Kind} answered {answer})");
            }
            throw new ScenarioParseException(new SourceLocation(trace.File, 1, 1), $"the replay's host cannot be set up: {step.Kind} answered {answer}");
        }
    }

    private static ReplayHost SettleHost(QemuTrace trace, QemuTraceImportOptions options, QemuTraceEvent[] calls)
    {
        ulong page = options.PageSize;
        var spans = new List<(ulong Start, ulong End)>();
        foreach (QemuTraceEvent e in calls)
        {
            if (e.Kind != QemuTraceEventKind.Map || e.Vaddr is not ulong vaddr || e.Size == 0)
            {
                continue;
            }
            ulong start = vaddr & ~(page - 1);
            if (vaddr > ulong.MaxValue - e.Size || vaddr + e.Size > ulong.MaxValue - page)
            {
                throw new ScenarioParseException(e.Location, $"{e.Event}: vaddr 0x{vaddr:x} + size 0x{e.Size:x} wraps past 2^64");
            }
            ulong end = (vaddr + e.Size + page - 1) & ~(page - 1);
            spans.Add((start, end));
        }
        spans.Sort((a, b) => a.Start.CompareTo(b.Start));
        var ranges = new List<(ulong Start, ulong End)>();
        foreach ((ulong start, ulong end) in spans)
        {
            if (ranges.Count > 0 && start <= ranges[^1].End)
            {
                ranges[^1] = (ranges[^1].Start, Math.Max(ranges[^1].End, end));
            }
            else
            {
                ranges.Add((start, end));
            }
        }
        ulong total = 0;
        foreach ((ulong start, ulong end) in ranges)
        {
            total = total > ulong.MaxValue - (end - start) ? ulong.MaxValue : total + (end - start);
        }
        ulong memory = options.Memory ?? (total > ulong.MaxValue - 2 * GiB ? ulong.MaxValue & ~(GiB - 1) : (total + 2 * GiB - 1) & ~(GiB - 1));
        QemuTraceEvent? attach = trace.Events.FirstOrDefault(e => e.Kind == QemuTraceEventKind.AttachDevice && e.Device is not null && PciAddressPattern().IsMatch(e.Device));
        string device = options.Device ?? attach?.Device ?? "0000:01:00.0";
        int group = options.Group ?? attach?.Group ?? 1;
        string name = options.Name ?? "qemu-trace-" + NameCleaner().Replace(Path.GetFileNameWithoutExtension(trace.File), "-");
        return new ReplayHost(name, options, memory, device, group, options.DmaEntryLimit ?? trace.DmaEntryLimit, ranges);
    }

    [GeneratedRegex("^[A-Za-z0-9._-]+$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("[^A-Za-z0-9._-]")]
    private static partial Regex NameCleaner();

    [GeneratedRegex("^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\\.[0-7]$")]
    private static partial Regex PciAddressPattern();
}
