namespace VfioLab.Fuzzing;

/// <summary>How long and from where a <see cref="FuzzCampaign"/> runs.</summary>
public sealed record FuzzOptions
{
    /// <summary>The time budget in seconds (finite, above 0), when <see cref="Rounds"/> is not set; default 30. Only the
    /// number of rounds depends on it: each round is a pure function of its seed.</summary>
    public double Seconds { get; init; } = 30;

    /// <summary>A fixed number of rounds (above 0) instead of a time budget (reproducible figures); null: the
    /// budget is <see cref="Seconds"/>.</summary>
    public long? Rounds { get; init; }

    /// <summary>The first round's seed; round <c>r</c> uses <c>Seed + r</c>.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>One campaign of <see cref="FuzzCampaign.CampaignNames"/> (<c>differential</c>, <c>ioctl</c>,
    /// <c>scenario</c>), or all when null.</summary>
    public string? Campaign { get; init; }

    /// <summary>One kernel profile of <see cref="Lab.KernelProfiles.All"/>, or each when null.</summary>
    public string? Profile { get; init; }
}
