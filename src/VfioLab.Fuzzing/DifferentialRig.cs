using System.Globalization;
using System.Text;

namespace VfioLab.Fuzzing;

/// <summary>
/// The differential campaign's starting host, as a scenario (so a failing sequence replays as a file):
/// an AMD-Vi host with the GPU (group 1, always attached) and the NIC (group 2, same IOMMU), a device
/// behind an SMMUv3 restricted to 64 KiB and 512 MiB pages (group 3: attaching it raises the container's
/// minimum page to 64 KiB, narrows the aperture to 48 bits and adds a software-MSI hole), an mdev (group 10,
/// emulated: its vendor driver pins through the VFIO core); a VMM with a
/// 3 MiB RLIMIT_MEMLOCK; 4 MiB of read-write memory, read-only memory, another driver's PFNMAP MMIO and
/// a bitmap buffer at fixed addresses; one container (fd 0) with the GPU's group (fd 1), TYPE1 or TYPE1v2.
/// </summary>
internal static class DifferentialRig
{
    /// <summary>Read-write anonymous memory, 4 MiB.</summary>
    public const ulong Ram = 0x1000_0000;

    /// <summary>Size of <see cref="Ram"/>.</summary>
    public const ulong RamSize = 0x40_0000;

    /// <summary>Read-only anonymous memory, 256 KiB.</summary>
    public const ulong ReadOnly = 0x3000_0000;

    /// <summary>Another driver's MMIO (VM_PFNMAP, pfns beyond RAM), 256 KiB.</summary>
    public const ulong Mmio = 0x4000_0000;

    /// <summary>Size of <see cref="ReadOnly"/> and <see cref="Mmio"/>.</summary>
    public const ulong SmallSize = 0x4_0000;

    /// <summary>Read-write memory for user dirty bitmaps, 64 KiB.</summary>
    public const ulong Bitmap = 0x5000_0000;

    /// <summary>The mdev's UUID (group 10, vendor driver <c>mdev</c>).</summary>
    public const string MdevUuid = "5a0e2f6c-1d7b-4c43-9a53-0c3bd0b6f010";

    /// <summary>RLIMIT_MEMLOCK in pages (3 MiB).</summary>
    public const long MemlockPages = 768;

    /// <summary>The SMMU's input address size: 48 bits.</summary>
    public const ulong SmmuApertureLast = (1UL << 48) - 1;

    /// <summary>The SMMU's software-MSI window (IOMMU_RESV_SW_MSI).</summary>
    public const ulong SwMsiStart = 0x800_0000;

    /// <summary>Last byte of the software-MSI window.</summary>
    public const ulong SwMsiLast = 0x80f_ffff;

    /// <summary>AMD-Vi's reserved regions: the MSI doorbell and the HyperTransport hole.</summary>
    public static readonly IReadOnlyList<(ulong Start, ulong Last)> AmdHoles = [(0xfee0_0000, 0xfeef_ffff), (0xfd_0000_0000, 0xff_ffff_ffff)];

    /// <summary>What lies at a user address of the rig's processes.</summary>
    public enum MemoryKind
    {
        /// <summary>Nothing mapped.</summary>
        Hole,

        /// <summary>Read-write anonymous memory.</summary>
        ReadWrite,

        /// <summary>Read-only anonymous memory.</summary>
        ReadOnly,

        /// <summary>VM_PFNMAP MMIO with reserved pfns.</summary>
        Pfnmap,

        /// <summary>The VMM's mmap of the GPU's BAR0 (a vfio device's VM_PFNMAP region).</summary>
        Bar,
    }

    /// <summary>The kind of memory at <paramref name="vaddr"/>.</summary>
    public static MemoryKind KindOf(ulong vaddr) => vaddr switch
    {
        >= Ram and < Ram + RamSize => MemoryKind.ReadWrite,
        >= ReadOnly and < ReadOnly + SmallSize => MemoryKind.ReadOnly,
        >= Mmio and < Mmio + SmallSize => MemoryKind.Pfnmap,
        >= Bitmap and < Bitmap + 0x1_0000 => MemoryKind.ReadWrite,
        _ => MemoryKind.Hole,
    };

    /// <summary>The rig for <paramref name="profile"/>, with a TYPE1v2 or TYPE1 container, and <c>strict_mmio_maps</c>
    /// on when <paramref name="strict"/> (seeds then refuses the other driver's MMIO); host frames contiguous, or
    /// scattered in runs of <paramref name="runPages"/> pages when it is positive.</summary>
    public static string ScenarioText(string profile, bool v2, string name, bool strict = false, int runPages = 0)
    {
        var sb = new StringBuilder();
        RigScenario.AppendHost(sb, name, "the differential campaign's host: two IOMMUs with different page sizes, a tight memlock", "128MiB", profile, "3MiB", MdevUuid, strict, runPages);
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: 0x{RamSize:x}, at: 0x{Ram:x} }}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: 0x{SmallSize:x}, at: 0x{ReadOnly:x}, prot: r }}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: 0x{SmallSize:x}, at: 0x{Mmio:x}, backing: pfnmap }}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: 0x10000, at: 0x{Bitmap:x} }}");
        sb.AppendLine("  - open: { path: /dev/vfio/vfio, as: container }");
        sb.AppendLine("  - open: { path: /dev/vfio/1, as: g1 }");
        sb.AppendLine("  - group_set_container: { fd: g1, container: container }");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - set_iommu: {{ fd: container, type: {(v2 ? "VFIO_TYPE1v2_IOMMU" : "VFIO_TYPE1_IOMMU")} }}");
        return sb.ToString();
    }
}
