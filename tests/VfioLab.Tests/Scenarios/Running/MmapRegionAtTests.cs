using VfioLab.Scenarios;
using VfioLab.Tests.Scenarios.Parsing;

namespace VfioLab.Tests.Scenarios.Running;

/// <summary><c>mmap_region</c>'s <c>at</c>: the device region mapped at a fixed address (MAP_FIXED), as
/// <c>vfiolab serve --record</c> writes a client's BAR mapping; a malformed address is a located parse error.</summary>
public sealed class MmapRegionAtTests
{
    private static string Scenario(string mmapRegion) => $$"""
        vfiolab: 1
        name: at
        host: { memory: 256MiB }
        devices:
          - { name: nic, address: "0000:02:00.0", group: 7, bars: [ { index: 0, size: 1MiB } ] }
        processes: [ { name: vmm } ]
        steps:
          - open: { path: /dev/vfio/vfio, as: container }
          - open: { path: /dev/vfio/7, as: group }
          - group_set_container: { fd: group, container: container }
          - set_iommu: { fd: container, type: VFIO_TYPE1v2_IOMMU }
          - get_device_fd: { fd: group, name: "0000:02:00.0", as: dev }
          - mmap: { size: 2MiB, at: 0x7f0000000000, as: ram }
          {{mmapRegion}}
        """;

    private static ScenarioOutcome Run(string text) => ScenarioRunner.Prepare(ScenarioDocument.Parse(text, "at.yaml")).Execute();

    [Fact]
    public void MmapRegion_At_MapsTheRegionThereAndMapDmaReachesIt()
    {
        ScenarioOutcome outcome = Run(Scenario("""
              - mmap_region: { device_fd: dev, index: 0, size: 1MiB, at: 0x7f0000200000, as: bar, expect: { address: 0x7f0000200000 } }
              - map_dma: { fd: container, iova: 0x100000, vaddr: bar, size: 1MiB }
              - check: { mappings: { fd: container, count: 1 } }
            """.Trim()));
        Assert.True(outcome.Passed, string.Join('\n', outcome.Steps.Select(s => $"{s.Kind} {s.Outcome} {string.Join("; ", s.Problems)}")));
    }

    [Fact]
    public void MmapRegion_AtOverMemory_ReplacesItAsMapFixedDoes()
    {
        // MAP_FIXED over the anonymous mapping: the BAR is there now, so a MAP_DMA of it charges nothing.
        ScenarioOutcome outcome = Run(Scenario("""
              - mmap_region: { device_fd: dev, index: 0, size: 1MiB, at: 0x7f0000000000, expect: { address: 0x7f0000000000 } }
              - map_dma: { fd: container, iova: 0, vaddr: ram, size: 1MiB }
              - check: { locked_vm: { process: vmm, bytes: 0 } }
            """.Trim()));
        Assert.True(outcome.Passed, string.Join('\n', outcome.Steps.Select(s => $"{s.Kind} {s.Outcome} {string.Join("; ", s.Problems)}")));
    }

    [Fact]
    public void MmapRegion_AtMisaligned_IsEinvalAndMapsNothing()
    {
        ScenarioOutcome outcome = Run(Scenario("""
              - mmap_region: { device_fd: dev, index: 0, size: 1MiB, at: 0x7f0000200800, expect: EINVAL }
              - read: { vaddr: 0x7f0000200000, size: 4, expect: EFAULT }
            """.Trim()));
        Assert.True(outcome.Passed, string.Join('\n', outcome.Steps.Select(s => $"{s.Kind} {s.Outcome} {string.Join("; ", s.Problems)}")));
    }

    [Fact]
    public void MmapRegion_AtNotAValue_IsALocatedParseError()
    {
        string text = ScenarioSamples.WithSteps("- mmap_region: { device_fd: 3, index: 0, size: 4KiB, at: \"12 apples\" }");
        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioDocument.Parse(text, ScenarioSamples.File));
        Assert.Equal(ScenarioSamples.FirstStepLine, e.Line);
        Assert.Equal(text.Split('\n')[ScenarioSamples.FirstStepLine - 1].IndexOf("\"12", StringComparison.Ordinal) + 1, e.Column);
        Assert.Contains("at", e.Reason, StringComparison.Ordinal);
    }
}
