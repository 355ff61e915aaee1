using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;
using VfioLab.Tests.Scenarios.Running;

namespace VfioLab.Tests.Mdev;

/// <summary>The scenario steps of a vendor driver (<c>pin_pages</c>, <c>unpin_pages</c>, <c>dma_rw</c>), the
/// <c>misbehaving</c> device field and the <c>iommu-notifier-chain</c> quirk, run from scenario text.</summary>
public sealed class MdevScenarioTests
{
    private const string Host = """
        vfiolab: 1
        name: t
        host:
          memory: 512MiB
        devices:
          - { name: nic, address: "0000:02:00.0", group: 2, bars: [ { index: 0, size: 1MiB } ] }
          - { name: vgpu, address: "8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11", driver: mdev, group: 20 }
          - { name: hostdev, address: "0000:03:00.0", group: 3, driver: host, bars: [ { index: 0, size: 1MiB } ] }
        processes:
          - { name: qemu }
          - { name: other }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/20, as: g }
          - group_set_container: { fd: g, container: c }
          - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
          - get_device_fd: { fd: g, name: "8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11", as: d }
          - mmap: { size: 1MiB, populate: true, as: ram }
          - map_dma: { fd: c, iova: 0, vaddr: ram, size: 1MiB }

        """;

    private static (ScenarioOutcome Outcome, CollectingReporter Reporter) Run(string steps, string quirks = "")
    {
        string text = Host + steps;
        if (quirks.Length > 0)
        {
            text = text.Replace("  memory: 512MiB", $"  memory: 512MiB\n  quirks: [{quirks}]", StringComparison.Ordinal);
        }
        ScenarioDocument doc = ScenarioParser.Parse(text, "t.yaml");
        var reporter = new CollectingReporter();
        return (ScenarioRunner.Run(doc, new RunOptions(), reporter, null), reporter);
    }

    [Theory]
    [InlineData("")]
    [InlineData("iommu-notifier-chain")]
    public void Run_PinWriteUnmap_PassesUnderBothProtocols(string quirks)
    {
        (ScenarioOutcome outcome, CollectingReporter r) = Run("""
              - pin_pages: { device: vgpu, iova: 0x1000, count: 2, expect: { result: 2 } }
              - check: { locked_vm: { process: qemu, bytes: 8KiB } }
              - dma_rw: { device: vgpu, iova: 0x1ffe, op: write, data: "aa bb cc dd" }
              - dma_rw: { device: vgpu, iova: 0x1ffe, op: read, size: 4, expect: { data: "aa bb cc dd" } }
              - dma_rw: { device: vgpu, iova: 0x1ffe, op: read, size: 4, process: other, expect: EFAULT }
              - dma_rw: { device: vgpu, iova: 0x1ffe, op: read, size: 4, process: qemu }
              - unmap_dma: { fd: c, iova: 0, size: 1MiB, expect: { size: 1MiB } }
              - check: { pinned_pages: 0 }
              - unpin_pages: { device: vgpu, iova: 0x1000, count: 2, expect: { warned: true } }
              - check: { invariants: clean }
            """, quirks);

        Assert.True(outcome.Passed, string.Join("\n", r.Steps.Where(s => !s.Passed).SelectMany(s => s.Problems)));
    }

    [Fact]
    public void Run_PinPagesOnAHostDriverDevice_FailsTheStepWithAMessage()
    {
        (ScenarioOutcome outcome, CollectingReporter r) = Run("""
              - pin_pages: { device: hostdev, iova: 0, count: 1 }
            """);

        Assert.False(outcome.Passed);
        Assert.Contains(r.Steps[^1].Problems, p => p.Contains("host driver", StringComparison.Ordinal));
    }

    [Fact]
    public void Run_PinPagesErrnos_MatchTheKernel()
    {
        (ScenarioOutcome outcome, CollectingReporter r) = Run("""
              - pin_pages: { device: vgpu, iova: 0, count: 0, expect: EINVAL }
              - pin_pages: { device: vgpu, iova: 0, count: 513, expect: E2BIG }
              - pin_pages: { device: vgpu, iova: 1MiB, count: 1, expect: EINVAL }
              - check: { pinned_pages: 0 }
            """);

        Assert.True(outcome.Passed, string.Join("\n", r.Steps.Where(s => !s.Passed).SelectMany(s => s.Problems)));
    }
}
