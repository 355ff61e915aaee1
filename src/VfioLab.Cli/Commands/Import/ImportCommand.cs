using System.Globalization;
using VfioLab.Cli.Commands.Plan;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Import;

namespace VfioLab.Cli.Commands.Import;

/// <summary>
/// <c>vfiolab import qemu-trace LOG -o FILE.yaml [host options]</c>: reads the options (every error, exit 2), reads
/// the trace (a malformed line: <c>LOG:LINE:COLUMN: reason</c>, exit 2), replays it on the model, writes the scenario
/// whole or not at all, and prints a summary with each call where the model's answer differs from QEMU's.
/// </summary>
internal sealed class ImportCommand(CliConsole console)
{
    public int Execute(ImportSettings s)
    {
        var errors = new List<string>();
        var options = new QemuTraceImportOptions
        {
            Name = s.Name,
            Memory = s.Memory is { } m ? PlanOptionsReader.Size("--memory", m, errors) : null,
            Iommu = s.Iommu ?? "vt-d",
            IommuPageSizes = s.IommuPageSizes.Length == 0 ? null : [.. s.IommuPageSizes.Select(p => PlanOptionsReader.Size("--iommu-page-size", p, errors))],
            ApertureBits = s.ApertureBits,
            Kernel = s.Kernel ?? VfioLab.Lab.KernelProfiles.Seeds,
            DmaEntryLimit = s.DmaEntryLimit is { } d ? Count("--dma-entry-limit", d, errors) : null,
            Memlock = s.Memlock is null or "unlimited" ? null : PlanOptionsReader.Size("--memlock", s.Memlock, errors),
            Device = s.Device,
            Group = s.Group,
        };
        if (s.PageSize is { } page)
        {
            options = options with { PageSize = PlanOptionsReader.Size("--page-size", page, errors) };
        }
        if (errors.Count == 0)
        {
            errors.AddRange(QemuTraceImporter.Validate(options));
        }
        if (errors.Count > 0)
        {
            foreach (string e in errors)
            {
                console.Error.WriteLine(console.ErrorStyle.Fail($"vfiolab import qemu-trace: {Printable.Escape(e)}"));
            }
            return ExitCodes.UsageOrInputError;
        }
        QemuTraceReplay replay;
        try
        {
            replay = QemuTraceImporter.Import(QemuTrace.Load(s.Log), options);
        }
        catch (ScenarioParseException e)
        {
            console.Error.WriteLine(console.ErrorStyle.Fail(Printable.Escape(e.Message)));
            return ExitCodes.UsageOrInputError;
        }
        TextWriter report = console.Error;
        if (s.Output == "-")
        {
            console.Out.Write(replay.Yaml);
        }
        else
        {
            try
            {
                replay.Write(s.Output);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                console.Error.WriteLine(console.ErrorStyle.Fail($"vfiolab import qemu-trace: cannot write '{Printable.Escape(s.Output)}': {Printable.Escape(e.Message)}"));
                return ExitCodes.OutputError;
            }
            report = console.Out;
        }
        report.WriteLine($"{Printable.Escape(s.Output)}: {replay.ReplayedCalls} DMA call(s) replayed, {replay.Differences.Count} where the model's answer differs from QEMU's");
        foreach (ReplayDifference difference in replay.Differences)
        {
            report.WriteLine($"  {Printable.Escape(difference.ToString())}");
        }
        return ExitCodes.Success;
    }

    private static uint Count(string option, string text, List<string> errors)
    {
        if (uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint value))
        {
            return value;
        }
        errors.Add($"{option}: '{text}' is not a count from 0 to {uint.MaxValue}");
        return 0;
    }
}
