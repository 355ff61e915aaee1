using System.Globalization;
using VfioLab.Fuzzing;
using VfioLab.Simulation;

namespace VfioLab.Cli.Commands.Fuzz;

/// <summary><c>vfiolab fuzz</c>: runs the differential, ioctl and scenario-file campaigns for a time budget (or a
/// number of rounds) from a seed, with a progress bar, prints the figures, writes every failing case as a
/// scenario file; exits 0 only when no violation was found.</summary>
internal sealed class FuzzCommand(TextWriter stdout, TextWriter stderr)
{
    public int Execute(CommandLine line)
    {
        if (line.Positional.Count > 0)
        {
            stderr.WriteLine("vfiolab fuzz: takes no positional argument");
            return ExitCodes.UsageOrInputError;
        }
        string? error = TryOptions(line, out FuzzOptions options);
        if (error is not null)
        {
            stderr.WriteLine($"vfiolab fuzz: {error}");
            return ExitCodes.UsageOrInputError;
        }
        string budget = options.Rounds is long r ? $"{r} rounds" : $"{options.Seconds.ToString(CultureInfo.InvariantCulture)} s";
        stdout.WriteLine($"fuzz: {options.Campaign ?? "all campaigns"}, {options.Profile ?? "both profiles"}, seed {options.Seed}, {budget}");
        var campaign = new FuzzCampaign(options);
        campaign.Run((done, f) =>
        {
            int bar = (int)Math.Round(done * 20);
            stdout.WriteLine($"  [{new string('#', bar)}{new string('.', 20 - bar)}] {done * 100,3:0}%  {f.Operations} ops in {f.Sequences} sequences, {f.Ioctls} ioctls, {f.ScenarioFiles} files, {f.Violations} violations");
        });
        FuzzFigures figures = campaign.Figures;
        stdout.WriteLine($"sequences: {figures.Sequences} ({figures.Operations} operations)");
        stdout.WriteLine($"ioctls: {figures.Ioctls}");
        stdout.WriteLine($"scenario files: {figures.ScenarioFiles}");
        stdout.WriteLine($"distinct errno paths: {figures.ErrnoPaths} (success paths: {figures.SuccessPaths})");
        stdout.WriteLine($"violations: {figures.Violations}");
        foreach (FuzzViolation v in campaign.Violations)
        {
            stdout.WriteLine($"  {v.ToString().Split('\n')[0]}");
        }
        string outDir = line.Value(FuzzCommandDefinition.Out) ?? "fuzz-failures";
        foreach (string path in campaign.WriteFailures(outDir))
        {
            stdout.WriteLine($"  written: {path}");
        }
        return campaign.Violations.Count == 0 ? ExitCodes.Success : ExitCodes.ScenarioFailed;
    }

    private static string? TryOptions(CommandLine line, out FuzzOptions options)
    {
        options = new FuzzOptions();
        string? seconds = line.Value(FuzzCommandDefinition.Seconds);
        if (seconds is not null)
        {
            if (!double.TryParse(seconds, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || s <= 0 || s > 7 * 24 * 3600)
            {
                return $"--seconds '{seconds}' is not a positive number of seconds";
            }
            options = options with { Seconds = s };
        }
        string? seed = line.Value(FuzzCommandDefinition.Seed);
        if (seed is not null)
        {
            bool hex = seed.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
            if (!ulong.TryParse(hex ? seed[2..] : seed, hex ? NumberStyles.HexNumber : NumberStyles.None, CultureInfo.InvariantCulture, out ulong v))
            {
                return $"--seed '{seed}' is not an unsigned 64-bit number";
            }
            options = options with { Seed = v };
        }
        string? rounds = line.Value(FuzzCommandDefinition.Rounds);
        if (rounds is not null)
        {
            if (!long.TryParse(rounds, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n <= 0)
            {
                return $"--rounds '{rounds}' is not a positive number";
            }
            options = options with { Rounds = n };
        }
        string? campaign = line.Value(FuzzCommandDefinition.Campaign);
        if (campaign is not null && !FuzzCampaign.CampaignNames.Contains(campaign))
        {
            return $"--campaign '{campaign}': one of {string.Join(", ", FuzzCampaign.CampaignNames)}";
        }
        string? profile = line.Value(FuzzCommandDefinition.Profile);
        if (profile is not null && profile is not (KernelSettings.Seeds or KernelSettings.Linux618))
        {
            return $"--profile '{profile}': {KernelSettings.Seeds} or {KernelSettings.Linux618}";
        }
        options = options with { Campaign = campaign, Profile = profile };
        return null;
    }
}
