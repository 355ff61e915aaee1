using System.Globalization;
using System.Text;
using VfioLab.Lab;
using VfioLab.Scenarios;

namespace VfioLab.Fuzzing;

/// <summary>The host both campaign rigs start from, as scenario text: an AMD-Vi host with the GPU (group 1)
/// and the NIC (group 2), a device behind an SMMUv3 restricted to 64 KiB and 512 MiB pages (group 3) and an
/// mdev (group 10), one VMM process; the rigs append their own steps.</summary>
internal static class RigScenario
{
    /// <summary>Builds the host <paramref name="text"/> describes and runs its steps (checking invariants after each
    /// when <paramref name="checkInvariants"/>). A step that fails is a bug in the model or the rig, reported as an
    /// exception naming <paramref name="rig"/>, and no later step runs.</summary>
    public static LabHost Run(string text, string file, bool checkInvariants, string rig)
    {
        PreparedScenario prepared = ScenarioRunner.Prepare(ScenarioDocument.Parse(text, file), new RunOptions { CheckInvariants = checkInvariants });
        prepared.Execute(new StopAtFailure(rig));
        return prepared.Host;
    }

    /// <summary>Writes the document up to and including <c>steps:</c>.</summary>
    public static void AppendHost(StringBuilder sb, string name, string description, string memory, string profile, string memlock, string mdevUuid,
        bool strictMmioMaps = false, int runPages = 0)
    {
        sb.AppendLine("vfiolab: 1");
        sb.AppendLine(CultureInfo.InvariantCulture, $"name: {name}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"description: \"{description}\"");
        sb.AppendLine("host:");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  memory: {memory}");
        sb.AppendLine("  iommu: amd-vi");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  kernel: {profile}");
        // The rigs' pfnmap region is another driver's MMIO: under seeds' strict_mmio_maps type1 refuses it
        // (ENODEV), which would leave no PFNMAP path to exercise; relaxed (by default), it is walked as upstream does.
        sb.AppendLine(strictMmioMaps ? "  params: { strict_mmio_maps: true }" : "  params: { strict_mmio_maps: false }");
        if (runPages > 0)
        {
            // Shattered RAM: each fault takes the next run of runPages frames from a random permutation, so
            // every extent of the model (page table, IOPTEs, pins, refcounts) degenerates to a few pages.
            sb.AppendLine(CultureInfo.InvariantCulture, $"  frames: {{ layout: scattered, run_pages: {runPages}, seed: 7 }}");
        }
        sb.AppendLine("devices:");
        sb.AppendLine("  - { name: gpu, address: \"0000:01:00.0\", driver: vfio-pci, group: 1, bars: [ { index: 0, size: 1MiB } ] }");
        sb.AppendLine("  - { name: nic, address: \"0000:02:00.0\", driver: vfio-pci, group: 2, bars: [ { index: 0, size: 1MiB } ] }");
        sb.AppendLine("  - { name: arm, address: \"0000:03:00.0\", driver: vfio-pci, group: 3, iommu: smmu-v3, iommu_page_sizes: [64KiB, 512MiB], bars: [ { index: 0, size: 1MiB } ] }");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - {{ name: mdev, address: \"{mdevUuid}\", driver: mdev, group: 10 }}");
        sb.AppendLine("processes:");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - {{ name: vmm, memlock: {memlock} }}");
        sb.AppendLine("steps:");
    }

    /// <summary>Ends the rig's run at its first failing step.</summary>
    private sealed class StopAtFailure(string rig) : IScenarioReporter
    {
        public void StepFinished(StepReport report)
        {
            if (!report.Passed)
            {
                throw new InvalidOperationException($"{rig} step {report.Index + 1} ({report.Description}) failed: {string.Join("; ", report.Problems)}");
            }
        }
    }
}
