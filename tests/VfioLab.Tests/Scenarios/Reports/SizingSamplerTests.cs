using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;
using VfioLab.Tests.Scenarios.Running;

namespace VfioLab.Tests.Scenarios.Reports;

/// <summary>The sizing report as a run with <c>Sizing</c> samples it: rows per process (a forked child under the
/// kernel's name for it), per container, per IOMMU domain and per sPAPR window.</summary>
public sealed class SizingSamplerTests
{
    private static SizingReport Run(string text)
    {
        ScenarioDocument doc = ScenarioParser.Parse(text, "sizing.yaml");
        ScenarioOutcome outcome = ScenarioRunner.Run(doc, new RunOptions { Sizing = true }, new CollectingReporter(), null);
        Assert.True(outcome.Passed);
        return outcome.Sizing!;
    }

    [Fact]
    public void Report_Type1WithFork_RowsForBothProcessesTheContainerAndTheDomain()
    {
        SizingReport report = Run("""
            vfiolab: 1
            devices:
              - { name: nic, address: "0000:02:00.0", group: 2 }
            processes:
              - { name: qemu, memlock: 64MiB }
            steps:
              - open: { path: /dev/vfio/vfio, as: container }
              - open: { path: /dev/vfio/2, as: group }
              - group_set_container: { fd: group, container: container }
              - set_iommu: { fd: container, type: VFIO_TYPE1v2_IOMMU }
              - mmap: { size: 16KiB, as: buf }
              - map_dma: { fd: container, iova: 0x100000, vaddr: buf, size: 16KiB }
              - fork: { as: upgrade }
              - unmap_dma: { fd: container, iova: 0x100000, size: 16KiB }
            """);

        Assert.Equal(8, report.Steps);
        Assert.Equal(["qemu[1]", "qemu[2]"], report.Processes.Select(p => p.Name));
        Assert.Equal(16UL << 10, report.Processes[0].PeakLockedBytes);
        Assert.Equal(new ContainerSizing(1, 1, 65535), Assert.Single(report.Containers));
        DomainSizing domain = Assert.Single(report.Domains);
        Assert.Equal(("vt-d#0/d1", 4096UL, 4UL, 4UL), (domain.Name, domain.Granule, domain.PeakEntries, domain.PeakTablePages));
        Assert.Equal([new KeyValuePair<ulong, ulong>(4096, 4)], domain.EntriesAtPeak);
        Assert.Empty(report.TceWindows);
    }

    [Fact]
    public void Report_SpaprWindowRemovedAndCreatedAgain_IsTwoRows()
    {
        SizingReport report = Run("""
            vfiolab: 1
            host: { memory: 8GiB, page_size: 64KiB, iommu: spapr-tce }
            devices:
              - { name: gpu, address: "0000:01:00.0", group: 1 }
            processes:
              - { name: qemu, memlock: 2GiB }
            steps:
              - open: { path: /dev/vfio/vfio, as: container }
              - open: { path: /dev/vfio/1, as: group }
              - group_set_container: { fd: group, container: container }
              - set_iommu: { fd: container, type: VFIO_SPAPR_TCE_v2_IOMMU }
              - spapr_tce_remove: { fd: container, start: 0 }
              - spapr_tce_create: { fd: container, page_shift: 16, window_size: 1GiB, as: win }
              - spapr_tce_remove: { fd: container, start: win }
              - spapr_tce_create: { fd: container, page_shift: 16, window_size: 1GiB }
            """);

        Assert.Equal(2, report.TceWindows.Count);
        Assert.All(report.TceWindows, w => Assert.Equal("group 1 tce table #0 [0x0, 0x3fffffff] (10000 pages, 0x4000 entries, 1 level(s))", w.Name));
        Assert.All(report.TceWindows, w => Assert.Equal((0x4000UL, 0UL, 256UL << 10), (w.Entries, w.PeakValid, w.ChargedBytes)));
        Assert.Empty(report.Domains);
        Assert.Empty(report.Containers);
    }
}
