namespace VfioLab.Lab;

/// <summary>The kernel behaviour profiles a host can run (DESIGN.md "Kernel profiles").</summary>
public static class KernelProfiles
{
    /// <summary>Today's type1 with the seeds' device-memory design for PFNMAP (the default).</summary>
    public const string Seeds = Simulation.KernelSettings.Seeds;

    /// <summary>Upstream Linux v6.18 exactly.</summary>
    public const string Linux618 = Simulation.KernelSettings.Linux618;

    /// <summary>The 6.12 LTS kernel: <c>linux-6.18</c> without the v6.18 overflow fixes (EINVAL, not EOVERFLOW) and
    /// with VFIO_TYPE1_NESTING_IOMMU still advertised (removed in v6.13 by 35890f85573c). docs/architecture.md
    /// "Kernel profiles" lists every switch with its commit.</summary>
    public const string Linux612 = Simulation.KernelSettings.Linux612;

    /// <summary>The 6.1 LTS kernel (as its stable series ships it): <c>linux-6.12</c> plus GET_INFO capabilities unpadded
    /// and the pre-v6.6 copy size (before a881b496941f).</summary>
    public const string Linux61 = Simulation.KernelSettings.Linux61;

    /// <summary>Every profile name.</summary>
    public static IReadOnlyList<string> All { get; } = [Seeds, Linux618, Linux612, Linux61];
}
