namespace VfioLab.Cli.Commands.Conform;

/// <summary>A kernel and IOMMU the rig boots (conformance/boot.sh), and the model's view of it: the kernel profile the
/// model runs under, the IOVA aperture and the IOMMU page sizes the guest's IOMMU reports (conformance/README.md, "What
/// was measured").</summary>
internal sealed record RigMachine(string Kernel, string Iommu, string Profile, ulong ApertureLast, IReadOnlyList<ulong> PageSizes)
{
    /// <summary>The guest's memory (boot.sh's default).</summary>
    public const ulong GuestMemory = 2UL << 30;

    /// <summary>The guest's page size.</summary>
    public const ulong PageSize = 4096;

    /// <summary>The one BAR the edu offers: BAR0, 1 MiB.</summary>
    public const ulong EduBar0 = 1UL << 20;

    public static readonly IReadOnlyList<string> Kernels = ["6.1", "6.12"];

    public static readonly IReadOnlyList<string> Iommus = ["intel", "intel48", "virtio"];

    private static readonly IReadOnlyList<ulong> VtdSizes = [4UL << 10, 2UL << 20, 1UL << 30];

    /// <summary>The machine, or null with the reason when the rig cannot boot it.</summary>
    public static RigMachine? For(string kernel, string iommu, out string? reason)
    {
        reason = null;
        string profile = kernel switch
        {
            "6.1" => "linux-6.1",
            "6.12" => "linux-6.12",
            _ => string.Empty,
        };
        if (profile.Length == 0)
        {
            reason = $"--kernel {kernel}: the rig boots {string.Join(" and ", Kernels)}";
            return null;
        }
        switch (iommu)
        {
            case "intel":
                return new RigMachine(kernel, iommu, profile, (1UL << 39) - 1, VtdSizes);
            case "intel48":
                return new RigMachine(kernel, iommu, profile, (1UL << 48) - 1, VtdSizes);
            case "virtio" when kernel == "6.1":
                reason = "--iommu virtio: Debian's 6.1 kernel is built without CONFIG_VIRTIO_IOMMU";
                return null;
            case "virtio":
                // virtio-iommu in QEMU 7.2: every power of two from 4 KiB, a 64-bit input range.
                return new RigMachine(kernel, iommu, profile, ulong.MaxValue, [.. Enumerable.Range(12, 52).Select(b => 1UL << b)]);
            default:
                reason = $"--iommu {iommu}: one of {string.Join(", ", Iommus)}";
                return null;
        }
    }
}
