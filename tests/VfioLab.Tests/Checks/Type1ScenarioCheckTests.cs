using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;
using VfioLab.Tests.Scenarios.Running;

namespace VfioLab.Tests.Checks;

/// <summary>The type1 invariants through the scenario runner: checked after every step, a type1 flow across
/// two IOMMUs with dirty tracking and device DMA has no violation, also after RLIMIT_MEMLOCK is lowered below the
/// live charge (legal in Linux: the next MAP fails ENOMEM).</summary>
public sealed class Type1ScenarioCheckTests
{
    private const string Scenario = """
        vfiolab: 1
        name: type1-checked
        host: { memory: 1GiB, iommu: vt-d }
        devices:
          - { name: gpu, address: "0000:01:00.0", group: 1, bars: [ { index: 0, size: 16MiB } ] }
          - { name: nic, address: "0000:02:00.0", group: 2, bars: [ { index: 0, size: 1MiB } ], iommu: smmu-v3 }
        processes:
          - { name: qemu, memlock: 64MiB }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/1, as: g1 }
          - open: { path: /dev/vfio/2, as: g2 }
          - group_set_container: { fd: g1, container: c }
          - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
          - mmap: { size: 8MiB, as: buf }
          - map_dma: { fd: c, iova: 0x100000, vaddr: buf, size: 8MiB, flags: [READ, WRITE] }
          - map_dma: { fd: c, iova: 0x4000000, vaddr: buf, size: 2MiB, flags: [READ] }
          - group_set_container: { fd: g2, container: c }
          - dirty_pages: { fd: c, op: start }
          - dma: { device: nic, op: write, iova: 0x100000, data: "de ad be ef" }
          - check: { locked_vm: { process: qemu, bytes: 10MiB } }
          - set_rlimit: { memlock: 4MiB }
          - map_dma: { fd: c, iova: 0x6000000, vaddr: buf, size: 1MiB, flags: [READ], expect: { errno: ENOMEM } }
          - check: { locked_vm: { process: qemu, bytes: 10MiB } }
          - unmap_dma: { fd: c, iova: 0x4000000, size: 2MiB }
          - check: { invariants: clean }
          - unmap_dma: { fd: c, iova: 0x100000, size: 8MiB }
          - check: { invariants: clean }
          - group_unset_container: { fd: g2 }
          - group_unset_container: { fd: g1 }
          - check: { pinned_pages: 0 }
        """;

    [Fact]
    public void Run_Type1FlowUnderCheck_NoViolation()
    {
        ScenarioDocument doc = ScenarioParser.Parse(Scenario, "type1-checked.yaml");
        var reporter = new CollectingReporter();

        ScenarioOutcome outcome = ScenarioRunner.Run(doc, new RunOptions(), reporter, null);

        Assert.True(outcome.Passed, string.Join("\n", reporter.Steps.Where(s => !s.Passed).SelectMany(s => s.Problems)));
        Assert.Equal(doc.Steps.Count, outcome.StepsRun);
    }
}
