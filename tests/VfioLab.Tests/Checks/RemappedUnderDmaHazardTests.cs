using VfioLab.Lab;
using VfioLab.Scenarios;

namespace VfioLab.Tests.Checks;

/// <summary>A process munmaps and re-mmaps a page of DMA-mapped memory and an mdev then pins it: Linux allows it (the
/// pin walks the new page table) while the IOMMU keeps the frame MAP pinned. vpfn-consistent does not hold, but
/// that is a hazard the user created, reported with its reason, not a broken model; a pin that matches neither the
/// domains nor the page table stays a violation (InvariantCheckerTests).</summary>
public sealed class RemappedUnderDmaHazardTests
{
    internal const string Remap = """
        vfiolab: 1
        host: { memory: 1GiB }
        devices:
          - { name: gpu, address: "0000:01:00.0", group: 1 }
          - { name: vgpu, address: "8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11", driver: mdev, group: 20 }
        processes:
          - { name: qemu, memlock: 64MiB }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/1, as: g }
          - group_set_container: { fd: g, container: c }
          - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
          - open: { path: /dev/vfio/20, as: mg }
          - group_set_container: { fd: mg, container: c }
          - get_device_fd: { fd: mg, name: "8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11", as: md }
          - mmap: { size: 2MiB, populate: true, at: 0x10000000, as: ram }
          - map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 2MiB }
          - munmap: { vaddr: ram, size: 4KiB }
          - mmap: { size: 4KiB, populate: true, at: 0x10000000 }
          - pin_pages: { device: vgpu, iova: 0x100000, count: 1 }
          - unpin_pages: { device: vgpu, iova: 0x100000, count: 1 }
          - unmap_dma: { fd: c, iova: 0x100000, size: 2MiB }
        """;

    [Fact]
    public void PinOfRemappedPage_IsAHazardWithItsReason_NotAnUnexpectedViolation()
    {
        ScenarioOutcome outcome = ScenarioRunner.Run(ScenarioDocument.Parse(Remap, "remap.yaml"), new RunOptions { CheckInvariants = true });

        Assert.True(outcome.Passed, string.Join("\n", outcome.Steps.SelectMany(s => s.Problems)));
        Assert.Equal(0, outcome.UnexpectedViolations);
        StepReport pin = outcome.Steps[11];
        StepViolation hazard = Assert.Single(pin.Hazards);
        Assert.Equal(InvariantNames.VpfnConsistent, hazard.Invariant);
        Assert.StartsWith("container 1: mapping [0x100000, 0x2fffff]: external pin at 0x100000 holds pfn 0x200, the domains translate to pfn 0x0 (a hazard the user created", hazard.Message, StringComparison.Ordinal);
        Assert.Contains("Linux allows it", hazard.Message, StringComparison.Ordinal);
        Assert.Empty(pin.Violations);
        // Unpinned, the hazard is gone.
        Assert.Empty(outcome.Steps[12].Hazards);
    }

    [Fact]
    public void CheckInvariants_AfterThePin_NoViolationOneHazard()
    {
        PreparedScenario prepared = ScenarioRunner.Prepare(ScenarioDocument.Parse(Remap.Replace("  - unpin_pages: { device: vgpu, iova: 0x100000, count: 1 }\n  - unmap_dma: { fd: c, iova: 0x100000, size: 2MiB }", string.Empty, StringComparison.Ordinal), "remap.yaml"));
        prepared.Execute();

        IReadOnlyList<LabViolation> violations = prepared.Host.CheckInvariants(out IReadOnlyList<LabViolation> hazards);

        Assert.Empty(violations);
        Assert.Empty(prepared.Host.CheckInvariants());
        LabViolation hazard = Assert.Single(hazards);
        Assert.Equal(InvariantNames.VpfnConsistent, hazard.Invariant);
        Assert.NotNull(hazard.Hazard);
    }
}
