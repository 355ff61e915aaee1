using System.Globalization;
using System.Text;
using VfioLab.Host;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;
using VfioLab.Scenarios.Running;
using VfioLab.Simulation;

namespace VfioLab.Fuzzing;

/// <summary>
/// The host the ioctl campaign starts from, written as a scenario so any failing case can be saved as a
/// scenario file that rebuilds it: an AMD-Vi host (GPU group 1, NIC group 2) with a 64 KiB-granule
/// SMMUv3 device (group 3, so its container's minimum page is 64 KiB) and an mdev (group 10); one VMM
/// process; memory of every kind at fixed addresses (read-write, hugetlb, read-only, another driver's
/// PFNMAP MMIO, and a hole); one fd of every kind: a container without SET_IOMMU, a TYPE1v2 container
/// with two domains, three mappings and dirty tracking on, a TYPE1 (v1) container with the NIC and the
/// mdev, their group fds and a vfio-pci and an mdev device fd.
/// </summary>
internal sealed class FuzzRig
{
    /// <summary>Read-write anonymous memory (8 MiB).</summary>
    public const ulong Ram = 0x1000_0000;

    /// <summary>hugetlb memory on 2 MiB pages (4 MiB).</summary>
    public const ulong Huge = 0x2000_0000;

    /// <summary>Read-only anonymous memory (1 MiB).</summary>
    public const ulong ReadOnly = 0x3000_0000;

    /// <summary>Another driver's MMIO, VM_PFNMAP with pfns beyond RAM (1 MiB).</summary>
    public const ulong Mmio = 0x4000_0000;

    /// <summary>Nothing is mapped here.</summary>
    public const ulong Hole = 0x5000_0000;

    /// <summary>Where the campaign writes argument structs passed by pointer (inside <see cref="Ram"/>, above the mappings).</summary>
    public const ulong Scratch = Ram + 0x70_0000;

    /// <summary>The mdev's UUID.</summary>
    public const string MdevUuid = "5a0e2f6c-1d7b-4c43-9a53-0c3bd0b6f001";

    /// <summary>The fds of the rig's process, in the order the rig opens them, with their kinds.</summary>
    public static readonly IReadOnlyList<(int Fd, string Kind)> Fds =
    [
        (0, "container-unset"), (1, "container-v2"), (2, "container-v1"), (3, "group-v2"), (4, "group-v2-64k"),
        (5, "group-v1"), (6, "group-mdev"), (7, "device-pci"), (8, "device-mdev"),
    ];

    private FuzzRig(SimulatedHost host, Process process, string scenario)
    {
        Host = host;
        Process = process;
        Scenario = scenario;
    }

    /// <summary>The simulated host after the rig's steps.</summary>
    public SimulatedHost Host { get; }

    /// <summary>The VMM process holding every fd.</summary>
    public Process Process { get; }

    /// <summary>The scenario text that built the rig (without a trailing step list end).</summary>
    public string Scenario { get; }

    /// <summary>The rig's scenario for kernel profile <paramref name="profile"/> (<c>seeds</c>, <c>linux-6.18</c>).</summary>
    public static string ScenarioText(string profile)
    {
        var sb = new StringBuilder();
        RigScenario.AppendHost(sb, "fuzz-rig", "the ioctl campaign's starting host: every fd kind, two domains with different page sizes, dirty tracking on", "256MiB", profile, "16MiB", MdevUuid);
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: 8MiB, at: 0x{Ram:x}, as: ram }}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: 4MiB, at: 0x{Huge:x}, backing: hugetlb-2m, as: huge }}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: 1MiB, at: 0x{ReadOnly:x}, prot: r, as: ro }}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - mmap: {{ size: 1MiB, at: 0x{Mmio:x}, backing: pfnmap, as: mmio }}");
        sb.AppendLine("  - open: { path: /dev/vfio/vfio, as: c0 }");
        sb.AppendLine("  - open: { path: /dev/vfio/vfio, as: v2c }");
        sb.AppendLine("  - open: { path: /dev/vfio/vfio, as: v1c }");
        sb.AppendLine("  - open: { path: /dev/vfio/1, as: g1 }");
        sb.AppendLine("  - open: { path: /dev/vfio/3, as: g3 }");
        sb.AppendLine("  - open: { path: /dev/vfio/2, as: g2 }");
        sb.AppendLine("  - open: { path: /dev/vfio/10, as: g10 }");
        sb.AppendLine("  - group_set_container: { fd: g1, container: v2c }");
        sb.AppendLine("  - group_set_container: { fd: g3, container: v2c }");
        sb.AppendLine("  - set_iommu: { fd: v2c, type: VFIO_TYPE1v2_IOMMU }");
        sb.AppendLine("  - group_set_container: { fd: g2, container: v1c }");
        sb.AppendLine("  - group_set_container: { fd: g10, container: v1c }");
        sb.AppendLine("  - set_iommu: { fd: v1c, type: VFIO_TYPE1_IOMMU }");
        sb.AppendLine("  - map_dma: { fd: v2c, iova: 0x100000, vaddr: ram, size: 2MiB }");
        sb.AppendLine("  - map_dma: { fd: v2c, iova: 0x400000, vaddr: huge, size: 4MiB, flags: [READ] }");
        sb.AppendLine("  - map_dma: { fd: v2c, iova: 0x1000000, vaddr: mmio, size: 1MiB }");
        sb.AppendLine("  - map_dma: { fd: v1c, iova: 0x100000, vaddr: ram+2MiB, size: 1MiB }");
        sb.AppendLine("  - dirty_pages: { fd: v2c, op: start }");
        sb.AppendLine("  - get_device_fd: { fd: g1, name: \"0000:01:00.0\", as: d1 }");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - get_device_fd: {{ fd: g10, name: \"{MdevUuid}\", as: d10 }}");
        return sb.ToString();
    }

    /// <summary>Builds the rig under <paramref name="profile"/>. A rig step that fails is a bug in the model
    /// or the rig, reported as an exception.</summary>
    public static FuzzRig Build(string profile)
    {
        string text = ScenarioText(profile);
        ScenarioDocument doc = ScenarioParser.Parse(text, "fuzz-rig.yaml");
        var session = new ScenarioSession(doc, new RunOptions { CheckInvariants = true });
        for (int i = 0; i < doc.Steps.Count; i++)
        {
            StepReport r = session.Execute(i);
            if (!r.Passed)
            {
                throw new InvalidOperationException($"fuzz rig step {i + 1} ({r.Description}) failed: {string.Join("; ", r.Problems)}");
            }
        }
        Process vmm = session.Host.Simulated.Machine.Processes[0];
        return new FuzzRig(session.Host.Simulated, vmm, text);
    }
}
