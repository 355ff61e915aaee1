using System.Diagnostics;
using System.Globalization;
using VfioLab.Lab;

namespace VfioLab.Fuzzing;

/// <summary>
/// The whole robustness campaign behind <c>vfiolab fuzz</c> and CI: rounds of the differential, ioctl and
/// scenario-file campaigns under each kernel profile, round <c>r</c> using seed <c>seed + r</c>, until a
/// time budget or a round count runs out. Every round is a pure function of (campaign, profile, seed), so
/// a failing case reruns alone with that seed and <c>--rounds 1</c>; the budget only decides how many
/// rounds run.
/// </summary>
internal sealed class FuzzCampaign(FuzzOptions options)
{
    /// <summary>The campaigns in round-robin order.</summary>
    public static readonly IReadOnlyList<string> CampaignNames = ["differential", "ioctl", "scenario"];

    /// <summary>What was tried and reached, all campaigns together.</summary>
    public FuzzFigures Figures { get; } = new();

    /// <summary>Failing cases, in the order found.</summary>
    public List<FuzzViolation> Violations { get; } = [];

    /// <summary>Runs until the budget is spent; <paramref name="progress"/> gets the fraction done (0..1) now and then.</summary>
    public void Run(Action<double, FuzzFigures>? progress = null)
    {
        string[] profiles = options.Profile is null ? [KernelProfiles.Seeds, KernelProfiles.Linux618] : [options.Profile];
        string[] campaigns = options.Campaign is null ? [.. CampaignNames] : [options.Campaign];
        var differential = profiles.ToDictionary(p => p, p => new DifferentialCampaign(p));
        var ioctl = profiles.ToDictionary(p => p, p => new IoctlCampaign(p));
        string work = Directory.CreateTempSubdirectory("vfiolab-fuzz-").FullName;
        var scenario = new ScenarioCampaign(work);
        var clock = Stopwatch.StartNew();
        double lastReport = -1;
        try
        {
            for (long round = 0; options.Rounds is null ? clock.Elapsed.TotalSeconds < options.Seconds : round < options.Rounds; round++)
            {
                ulong seed = options.Seed + (ulong)round;
                foreach (string c in campaigns)
                {
                    foreach (string p in c == "scenario" ? profiles[..1] : profiles)
                    {
                        switch (c)
                        {
                            case "differential":
                                differential[p].RunSeed(seed);
                                break;
                            case "ioctl":
                                ioctl[p].RunSeed(seed);
                                break;
                            default:
                                scenario.RunSeed(seed);
                                break;
                        }
                    }
                }
                double done = options.Rounds is long n ? (double)(round + 1) / n : clock.Elapsed.TotalSeconds / options.Seconds;
                if (progress is not null && done - lastReport >= 0.1)
                {
                    lastReport = done;
                    progress(Math.Min(done, 1), Collect(differential.Values, ioctl.Values, scenario));
                }
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
        FuzzFigures all = Collect(differential.Values, ioctl.Values, scenario);
        Figures.Add(all);
        Violations.AddRange(differential.Values.SelectMany(d => d.Violations));
        Violations.AddRange(ioctl.Values.SelectMany(i => i.Violations));
        Violations.AddRange(scenario.Violations);
    }

    /// <summary>Writes each failing case's scenario under <paramref name="directory"/>; returns the paths.</summary>
    public IReadOnlyList<string> WriteFailures(string directory)
    {
        var paths = new List<string>();
        if (Violations.Count == 0)
        {
            return paths;
        }
        Directory.CreateDirectory(directory);
        foreach (FuzzViolation v in Violations)
        {
            string path = Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"{v.Campaign}-{v.Profile}-{v.Seed}.yaml"));
            File.WriteAllText(path, v.Scenario ?? string.Empty);
            paths.Add(path);
        }
        return paths;
    }

    private static FuzzFigures Collect(IEnumerable<DifferentialCampaign> d, IEnumerable<IoctlCampaign> i, ScenarioCampaign s)
    {
        var f = new FuzzFigures();
        foreach (DifferentialCampaign c in d)
        {
            f.Add(c.Figures);
        }
        foreach (IoctlCampaign c in i)
        {
            f.Add(c.Figures);
        }
        f.Add(s.Figures);
        return f;
    }
}
