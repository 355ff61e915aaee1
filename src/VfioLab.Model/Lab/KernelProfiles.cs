namespace VfioLab.Lab;

/// <summary>The kernel behaviour profiles a host can run (DESIGN.md "Kernel profiles").</summary>
public static class KernelProfiles
{
    /// <summary>Today's type1 with the seeds' device-memory design for PFNMAP (the default).</summary>
    public const string Seeds = Simulation.KernelSettings.Seeds;

    /// <summary>Upstream Linux v6.18 exactly.</summary>
    public const string Linux618 = Simulation.KernelSettings.Linux618;

    /// <summary>Every profile name.</summary>
    public static IReadOnlyList<string> All { get; } = [Seeds, Linux618];
}
