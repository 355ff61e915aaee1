namespace VfioLab.Scenarios.Model;

/// <summary>How physical frames are handed out: contiguous, or scattered in runs of <c>RunPages</c> pages shuffled with <c>Seed</c>.</summary>
internal sealed record FrameLayoutSpec(FrameLayoutKind Layout, ulong RunPages, ulong Seed)
{
    public const ulong DefaultRunPages = 16;

    public const ulong DefaultSeed = 1;

    public static FrameLayoutSpec Default { get; } = new(FrameLayoutKind.Contiguous, DefaultRunPages, DefaultSeed);
}
