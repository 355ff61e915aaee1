namespace VfioLab.Fuzzing;

/// <summary>One failing case: which campaign found it, under which profile and seed, what went wrong, and a
/// scenario file that replays it (<c>vfiolab run</c>).</summary>
/// <param name="Campaign">The campaign (<c>ioctl</c>, <c>differential</c>, <c>scenario</c>).</param>
/// <param name="Profile">The kernel profile.</param>
/// <param name="Seed">The seed that reproduces it (with the campaign and profile).</param>
/// <param name="Message">What was violated.</param>
/// <param name="Scenario">A scenario file replaying the case, or null when the case is a scenario file's text.</param>
internal sealed record FuzzViolation(string Campaign, string Profile, ulong Seed, string Message, string? Scenario)
{
    /// <inheritdoc />
    public override string ToString() => $"{Campaign} [{Profile}] seed {Seed}: {Message}";
}
