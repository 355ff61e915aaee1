namespace VfioLab.Fuzzing;

/// <summary>One failing case: which campaign found it, under which profile and seed, what went wrong, and a
/// scenario file that replays it (<c>vfiolab run</c>).</summary>
/// <param name="Campaign">The campaign (<c>ioctl</c>, <c>differential</c>, <c>scenario</c>).</param>
/// <param name="Profile">The kernel profile (<c>any</c> for the scenario campaign, whose files name their own).</param>
/// <param name="Seed">The seed that reproduces it (with the campaign and profile).</param>
/// <param name="Message">What was violated.</param>
/// <param name="Scenario">A scenario file that replays the case (for the scenario campaign, the mutated file itself), or null when there is none.</param>
public sealed record FuzzViolation(string Campaign, string Profile, ulong Seed, string Message, string? Scenario)
{
    /// <summary><c>CAMPAIGN [PROFILE] seed SEED: MESSAGE</c>.</summary>
    public override string ToString() => $"{Campaign} [{Profile}] seed {Seed}: {Message}";
}
