using System.Diagnostics;
using System.Globalization;
using VfioLab.Lab;

namespace VfioLab.Fuzzing;

/// <summary>
/// The whole robustness campaign behind <c>vfiolab fuzz</c> and CI: rounds of the differential, ioctl and
/// scenario-file campaigns under each kernel profile, round <c>r</c> using seed <c>seed + r</c>, until a
/// time budget or a round count runs out. Every round is a pure function of (campaign, profile, seed), so
/// a failing case reruns alone with that seed and <c>--rounds 1</c>; the budget only decides how many
/// rounds run. The campaigns (docs/robustness.md): <c>differential</c> runs operation sequences on the model and on
/// a naive per-page reference of type1 and compares them after each; <c>ioctl</c> issues mutated ioctls on every fd
/// kind of a populated host, each of which must answer a result or a defined errno and leave the host unchanged
/// when it fails; <c>scenario</c> parses and runs mutated scenario files, which must parse or fail located; <c>host</c>
/// generates and mutates host descriptions, each of which must be refused, located, when parsed or run with every
/// invariant holding.
/// </summary>
public sealed class FuzzCampaign
{
    private readonly FuzzOptions _options;
    private readonly List<FuzzViolation> _violations = [];

    /// <summary>A campaign that runs as <paramref name="options"/> say when <see cref="Run"/> is called.</summary>
    /// <param name="options">The budget, the seed, and optionally one campaign and one kernel profile.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">The options name a campaign other than <see cref="CampaignNames"/> or a
    /// profile other than <see cref="Profiles"/>, or the budget is not a positive number of rounds or a
    /// finite number of seconds above 0.</exception>
    public FuzzCampaign(FuzzOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Campaign is { } c && !CampaignNames.Contains(c, StringComparer.Ordinal))
        {
            throw new ArgumentException($"no campaign '{c}'; campaigns: {string.Join(", ", CampaignNames)}", nameof(options));
        }
        if (options.Profile is { } p && !Profiles.Contains(p, StringComparer.Ordinal))
        {
            throw new ArgumentException($"no campaign runs under kernel profile '{p}'; profiles: {string.Join(", ", Profiles)} (the naive reference models these two)", nameof(options));
        }
        if (options.Rounds is long rounds ? rounds <= 0 : !double.IsFinite(options.Seconds) || options.Seconds <= 0)
        {
            throw new ArgumentException("the budget is a positive number of rounds, or a finite number of seconds above 0", nameof(options));
        }
        _options = options;
    }

    /// <summary>The campaigns in round-robin order.</summary>
    public static IReadOnlyList<string> CampaignNames { get; } = ["differential", "ioctl", "scenario", "host"];

    /// <summary>The kernel profiles the campaigns run under: those the naive type1 reference models. The LTS profiles
    /// (<see cref="KernelProfiles.Linux612"/>, <see cref="KernelProfiles.Linux61"/>) differ from upstream in errno
    /// choices the reference does not make, so a campaign under them would report the differences as violations.</summary>
    public static IReadOnlyList<string> Profiles { get; } = [KernelProfiles.Seeds, KernelProfiles.Linux618];

    /// <summary>What was tried and reached, all campaigns together (filled in when <see cref="Run"/> ends).</summary>
    public FuzzFigures Figures { get; } = new();

    /// <summary>Failing cases, in the order found (filled in when <see cref="Run"/> ends).</summary>
    public IReadOnlyList<FuzzViolation> Violations => _violations;

    /// <summary>Runs until the budget is spent. Several runs add up in <see cref="Figures"/> and
    /// <see cref="Violations"/>. Scenario files are written to, and deleted from, a temporary directory.</summary>
    /// <param name="progress">Called about every tenth of the budget with the fraction done (0..1) and the figures
    /// so far; null: not called.</param>
    public void Run(Action<double, FuzzFigures>? progress = null)
    {
        FuzzOptions options = _options;
        string[] profiles = options.Profile is null ? [.. Profiles] : [options.Profile];
        string[] campaigns = options.Campaign is null ? [.. CampaignNames] : [options.Campaign];
        var differential = profiles.ToDictionary(p => p, p => new DifferentialCampaign(p));
        var ioctl = profiles.ToDictionary(p => p, p => new IoctlCampaign(p));
        string work = Directory.CreateTempSubdirectory("vfiolab-fuzz-").FullName;
        var scenario = new ScenarioCampaign(work);
        var hosts = new HostCampaign(work);
        var clock = Stopwatch.StartNew();
        double lastReport = -1;
        try
        {
            for (long round = 0; options.Rounds is null ? clock.Elapsed.TotalSeconds < options.Seconds : round < options.Rounds; round++)
            {
                ulong seed = options.Seed + (ulong)round;
                foreach (string c in campaigns)
                {
                    // The file campaigns run once a round: their files name their own kernel.
                    foreach (string p in c is "scenario" or "host" ? profiles[..1] : profiles)
                    {
                        switch (c)
                        {
                            case "differential":
                                differential[p].RunSeed(seed);
                                break;
                            case "ioctl":
                                ioctl[p].RunSeed(seed);
                                break;
                            case "host":
                                hosts.RunSeed(seed);
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
                    progress(Math.Min(done, 1), Collect(differential.Values, ioctl.Values, scenario, hosts));
                }
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
        FuzzFigures all = Collect(differential.Values, ioctl.Values, scenario, hosts);
        Figures.Add(all);
        _violations.AddRange(differential.Values.SelectMany(d => d.Violations));
        _violations.AddRange(ioctl.Values.SelectMany(i => i.Violations));
        _violations.AddRange(scenario.Violations);
        _violations.AddRange(hosts.Violations);
    }

    /// <summary>Writes each failing case's scenario (<see cref="FuzzViolation.Scenario"/>) under
    /// <paramref name="directory"/>, created when there is something to write, as
    /// <c>CAMPAIGN-PROFILE-SEED.yaml</c>; <c>vfiolab run FILE</c> replays it.</summary>
    /// <param name="directory">Where the files go.</param>
    /// <returns>The paths written, in the order of <see cref="Violations"/>; empty when there was none.</returns>
    /// <exception cref="IOException">A file or the directory cannot be written.</exception>
    /// <exception cref="UnauthorizedAccessException">A file or the directory may not be written.</exception>
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

    private static FuzzFigures Collect(IEnumerable<DifferentialCampaign> d, IEnumerable<IoctlCampaign> i, ScenarioCampaign s, HostCampaign h)
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
        f.Add(h.Figures);
        return f;
    }
}
