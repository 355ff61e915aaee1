namespace VfioLab.Fuzzing;

/// <summary>How long and from where a <see cref="FuzzCampaign"/> runs.</summary>
internal sealed record FuzzOptions
{
    /// <summary>The time budget in seconds, when <see cref="Rounds"/> is not set.</summary>
    public double Seconds { get; init; } = 30;

    /// <summary>A fixed number of rounds instead of a time budget (reproducible counts).</summary>
    public long? Rounds { get; init; }

    /// <summary>The first round's seed; round <c>r</c> uses <c>Seed + r</c>.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>One campaign (<c>differential</c>, <c>ioctl</c>, <c>scenario</c>), or all when null.</summary>
    public string? Campaign { get; init; }

    /// <summary>One kernel profile, or both when null.</summary>
    public string? Profile { get; init; }
}
