using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using VfioLab.Fuzzing;
using VfioLab.Lab;

namespace VfioLab.Cli.Commands.Fuzz;

/// <summary>Options of <c>vfiolab fuzz</c>, each parsed and checked here (a bad value is exit 2 naming the option);
/// <c>--rounds</c> and <c>--seconds</c> are alternatives.</summary>
internal static class FuzzCommandDefinition
{
    /// <summary>The longest time budget accepted: a week.</summary>
    public const double MaxSeconds = 7 * 24 * 3600;

    /// <summary>The time budget when neither <c>--seconds</c> nor <c>--rounds</c> is given.</summary>
    public const double DefaultSeconds = 30;

    public static Command Create(CliConsole console)
    {
        var seconds = new Option<double?>("--seconds")
        {
            HelpName = "N",
            Description = $"Time budget in seconds (default {DefaultSeconds.ToString(CultureInfo.InvariantCulture)}); a finite number above 0, at most a week.",
            CustomParser = ParseSeconds,
        };
        var rounds = new Option<long?>("--rounds")
        {
            HelpName = "N",
            Description = "A fixed number of rounds instead of a time budget (reproducible figures).",
            CustomParser = ParseRounds,
        };
        var seed = new Option<ulong>("--seed")
        {
            HelpName = "S",
            Description = "The first round's seed, decimal or 0x hex (default 1); round r uses S + r.",
            CustomParser = ParseSeed,
            DefaultValueFactory = _ => 1,
        };
        var campaign = new Option<string>("--campaign") { HelpName = "NAME", Description = $"One campaign: {string.Join(", ", FuzzCampaign.CampaignNames)} (default: all)." };
        OneOf(campaign, FuzzCampaign.CampaignNames);
        var profile = new Option<string>("--profile") { HelpName = "NAME", Description = $"One kernel profile: {string.Join(" or ", FuzzCampaign.Profiles)} (default: both; the naive reference models these)." };
        OneOf(profile, FuzzCampaign.Profiles);
        var output = new Option<string>("--out")
        {
            HelpName = "DIR",
            Description = "Where failing cases are written as scenario files (default fuzz-failures).",
            DefaultValueFactory = _ => "fuzz-failures",
        };
        var command = new Command("fuzz", "Run the robustness campaigns (differential, ioctl, scenario files, host descriptions).\n"
            + "For a time budget or a number of rounds from a seed; exit 1 when any violation is found.")
        {
            seconds, rounds, seed, campaign, profile, output,
        };
        command.Validators.Add(result =>
        {
            if (result.GetResult(seconds) is { Implicit: false } && result.GetResult(rounds) is { Implicit: false })
            {
                result.AddError("--rounds and --seconds are alternatives: give one");
            }
        });
        command.SetAction(parse =>
        {
            var options = new FuzzOptions
            {
                Seconds = parse.GetValue(seconds) ?? DefaultSeconds,
                Rounds = parse.GetValue(rounds),
                Seed = parse.GetValue(seed),
                Campaign = parse.GetValue(campaign),
                Profile = parse.GetValue(profile),
            };
            return new FuzzCommand(console).Execute(options, parse.GetValue(output)!);
        });
        return command;
    }

    /// <summary>Completes and accepts only <paramref name="names"/>, with a message naming the option.</summary>
    private static void OneOf(Option<string> option, IReadOnlyList<string> names)
    {
        option.CompletionSources.Add(names.ToArray());
        option.Validators.Add(result =>
        {
            string? value = result.GetValueOrDefault<string>();
            if (value is not null && !names.Contains(value, StringComparer.Ordinal))
            {
                result.AddError($"{option.Name} '{value}': one of {string.Join(", ", names)}");
            }
        });
    }

    private static double? ParseSeconds(ArgumentResult result)
    {
        string text = Single(result);
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || !double.IsFinite(s) || s <= 0 || s > MaxSeconds)
        {
            result.AddError($"--seconds '{text}' is not a number of seconds above 0 and at most {MaxSeconds.ToString(CultureInfo.InvariantCulture)}");
            return null;
        }
        return s;
    }

    private static long? ParseRounds(ArgumentResult result)
    {
        string text = Single(result);
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n <= 0)
        {
            result.AddError($"--rounds '{text}' is not a positive whole number");
            return null;
        }
        return n;
    }

    private static ulong ParseSeed(ArgumentResult result)
    {
        string text = Single(result);
        bool hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        if (!ulong.TryParse(hex ? text[2..] : text, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong v))
        {
            result.AddError($"--seed '{text}' is not an unsigned 64-bit number");
            return 0;
        }
        return v;
    }

    private static string Single(ArgumentResult result) => result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Empty;
}
