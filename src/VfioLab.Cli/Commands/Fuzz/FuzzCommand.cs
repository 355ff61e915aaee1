using System.Globalization;
using VfioLab.Fuzzing;

namespace VfioLab.Cli.Commands.Fuzz;

/// <summary><c>vfiolab fuzz</c>: runs the differential, ioctl and scenario-file campaigns for a time budget (or a
/// number of rounds) from a seed, with a progress bar (redrawn in place on a terminal, a line per tenth otherwise),
/// prints the figures, writes every failing case as a scenario file; exits 0 only when no violation was found.</summary>
internal sealed class FuzzCommand(CliConsole console)
{
    private const int BarWidth = 20;

    public int Execute(FuzzOptions options, string outDir)
    {
        TextWriter stdout = console.Out;
        ConsoleStyle style = console.OutStyle;
        string budget = options.Rounds is long r ? $"{r} rounds" : $"{options.Seconds.ToString(CultureInfo.InvariantCulture)} s";
        stdout.WriteLine($"fuzz: {options.Campaign ?? "all campaigns"}, {options.Profile ?? "both profiles"}, seed {options.Seed}, {budget}");
        var campaign = new FuzzCampaign(options);
        bool inPlace = console.OutIsTerminal;
        bool drew = false;
        campaign.Run((done, f) =>
        {
            int bar = (int)Math.Round(done * BarWidth);
            string line = $"  [{new string('#', bar)}{new string('.', BarWidth - bar)}] {done * 100,3:0}%  {f.Operations} ops in {f.Sequences} sequences, "
                + $"{f.Ioctls} ioctls, {f.ScenarioFiles} files, {f.HostDescriptions} hosts, {f.Violations} violations";
            if (inPlace)
            {
                // Carriage return, the line, then erase to the end of the line: the bar is redrawn where it stands.
                stdout.Write($"\r{line}\u001b[K");
                stdout.Flush();
                drew = true;
            }
            else
            {
                stdout.WriteLine(line);
            }
        });
        if (drew)
        {
            stdout.WriteLine();
        }
        FuzzFigures figures = campaign.Figures;
        stdout.WriteLine($"sequences: {figures.Sequences} ({figures.Operations} operations)");
        stdout.WriteLine($"ioctls: {figures.Ioctls}");
        stdout.WriteLine($"scenario files: {figures.ScenarioFiles}");
        stdout.WriteLine($"host descriptions: {figures.HostDescriptions} ({figures.HostRuns} ran, {figures.HostRefusals} distinct refusals, {figures.HostInternalErrors} internal errors)");
        stdout.WriteLine($"distinct errno paths: {figures.ErrnoPaths} (success paths: {figures.SuccessPaths})");
        string violations = $"violations: {figures.Violations}";
        stdout.WriteLine(figures.Violations == 0 ? style.Ok(violations) : style.Fail(violations));
        foreach (FuzzViolation v in campaign.Violations)
        {
            stdout.WriteLine($"  {Printable.Escape(v.ToString().Split('\n')[0])}");
        }
        foreach (string path in campaign.WriteFailures(outDir))
        {
            stdout.WriteLine($"  written: {Printable.Escape(path)}");
        }
        return ExitCodes.ForFuzz(campaign.Violations.Count);
    }
}
