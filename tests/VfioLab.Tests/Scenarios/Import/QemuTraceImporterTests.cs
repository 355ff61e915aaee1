using VfioLab.Scenarios;
using VfioLab.Scenarios.Import;

namespace VfioLab.Tests.Scenarios.Import;

/// <summary><c>QemuTraceImporter</c> through its public API: the host it guesses from a trace, iommufd's read-only
/// maps and results, the simple backend end to end, the options it refuses, and <c>QemuTraceReplay.Write</c>.</summary>
public sealed class QemuTraceImporterTests
{
    private static ScenarioOutcome Run(QemuTraceReplay replay)
    {
        ScenarioOutcome outcome = ScenarioRunner.Prepare(ScenarioDocument.Parse(replay.Yaml, "replay.yaml"), new RunOptions()).Execute();
        Assert.True(outcome.Passed, string.Join('\n', outcome.Steps.SelectMany(s => s.Problems)));
        return outcome;
    }

    [Fact]
    public void Import_TracedAttach_TheDeviceAndGroupComeFromIt()
    {
        QemuTrace trace = QemuTrace.Parse(
            "vfio_attach_device  (0000:0b:00.0) group 17\n"
            + "vfio_listener_region_add_ram region_add [ram] 0x0 - 0x9ffff [0x7fcaa7e00000]\n",
            "attach.log");

        QemuTraceReplay replay = QemuTraceImporter.Import(trace);

        Assert.Contains("  - { name: dev0, address: \"0000:0b:00.0\", group: 17 }", replay.Yaml, StringComparison.Ordinal);
        Assert.Contains("  - open: { path: /dev/vfio/17, as: group }", replay.Yaml, StringComparison.Ordinal);
        Assert.Contains("name: qemu-trace-attach", replay.Yaml, StringComparison.Ordinal);
        Assert.Empty(replay.Differences);
        Run(replay);
    }

    [Fact]
    public void Import_IommufdReadOnlyMapAndAFailedReMap_ReplayedWithTheirFlagsAndCompared()
    {
        QemuTrace trace = QemuTrace.Parse(
            "iommufd_backend_map_dma  iommufd=5 ioas=2 iova=0xfffc0000 size=0x40000 addr=0x7fcbb4600000 readonly=1 (0)\n"
            + "iommufd_backend_map_dma  iommufd=5 ioas=2 iova=0xfffc0000 size=0x40000 addr=0x7fcbb4600000 readonly=1 (-17)\n"
            + "iommufd_backend_unmap_dma  iommufd=5 ioas=2 iova=0xfffc0000 size=0x40000 (0)\n",
            "iommufd.log");

        QemuTraceReplay replay = QemuTraceImporter.Import(trace, new QemuTraceImportOptions { Device = "0000:02:00.0", Group = 3, Name = "rom" });

        Assert.Contains("size: 0x40000, flags: [READ], expect: EEXIST }", replay.Yaml, StringComparison.Ordinal);
        Assert.Empty(replay.Differences);
        Assert.Equal(3, replay.ReplayedCalls);
        Assert.Equal(["ok", "EEXIST", "ok"], Run(replay).Steps.Where(s => s.Kind.EndsWith("map_dma", StringComparison.Ordinal)).Select(s => s.Errno ?? "ok"));
    }

    [Fact]
    public void Import_SimpleBackendTrace_ReplaysLikeTheLogBackendsOne()
    {
        QemuTrace trace = QemuTrace.Parse(
            "vfio_listener_region_add_ram 0.000 pid=4242 iova_start=0x0 iova_end=0x9ffff vaddr=0x7fcaa7e00000\n"
            + "vfio_listener_region_add_ram 1.500 pid=4242 iova_start=0x0 iova_end=0x9ffff vaddr=0x7fcaa7e00000\n"
            + "vfio_listener_region_del 2.000 pid=4242 start=0x0 end=0x9ffff\n",
            "simple.log");

        QemuTraceReplay replay = QemuTraceImporter.Import(trace);

        ReplayDifference d = Assert.Single(replay.Differences);
        Assert.Equal(new ReplayDifference(new SourceLocation("simple.log", 2, 1), "map_dma iova 0x0 size 0xa0000 vaddr 0x7fcaa7e00000", "ok", "EEXIST", null), d);
        Assert.Equal("simple.log:2:1: map_dma iova 0x0 size 0xa0000 vaddr 0x7fcaa7e00000: QEMU got ok, the model answers EEXIST", d.ToString());
        Run(replay);
    }

    [Fact]
    public void Import_MapAcrossTheMsiWindowAndFromNil_EINVALAndEFAULTWhereQemuGotOk()
    {
        QemuTrace trace = QemuTrace.Parse(
            "vfio_listener_region_add_ram region_add [ram] 0x0 - 0xfff [(nil)]\n"
            + "vfio_listener_region_add_ram region_add [ram] 0xfee00000 - 0xfee00fff [0x7f0000000000]\n",
            "msi.log");

        QemuTraceReplay replay = QemuTraceImporter.Import(trace);

        Assert.Equal([("msi.log:1:1", "ok", "EFAULT"), ("msi.log:2:1", "ok", "EINVAL")], replay.Differences.Select(d => (d.Location.ToString(), d.Qemu, d.Model)));
        Assert.Contains("  # differs: QEMU got ok, the model answers EINVAL\n  - map_dma: { fd: container, iova: 0xfee00000, vaddr: 0x7f0000000000, size: 0x1000, flags: [READ, WRITE], expect: EINVAL }", replay.Yaml.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Equal(["EFAULT", "EINVAL"], Run(replay).Steps.Where(s => s.Kind == "map_dma").Select(s => s.Errno));
    }

    [Fact]
    public void Import_QemusRunningOutOfDmaMappingsWarning_SetsTheLimitAndTheMapPastItIsENOSPC()
    {
        QemuTrace trace = QemuTrace.Parse(
            "qemu-system-x86_64: warning: vfio_register_ram_discard_listener: possibly running out of DMA mappings. E.g., try increasing the 'block-size' of virtio-mem devies. Maximum possible DMA mappings: 2, Maximum possible memslots: 32764\n"
            + "vfio_listener_region_add_ram region_add [ram] 0x0 - 0x9ffff [0x7fcaa7e00000]\n"
            + "vfio_listener_region_add_ram region_add [ram] 0xc0000 - 0xdffff [0x7fcbb4200000]\n"
            + "vfio_listener_region_add_ram region_add [ram] 0x100000000 - 0x13fffffff [0x7fcac0000000]\n",
            "vmem.log");

        QemuTraceReplay replay = QemuTraceImporter.Import(trace);

        Assert.Equal((uint?)2, trace.DmaEntryLimit);
        Assert.Equal(1, trace.IgnoredLines);
        Assert.Contains("  params: { dma_entry_limit: 2 }", replay.Yaml, StringComparison.Ordinal);
        ReplayDifference d = Assert.Single(replay.Differences);
        Assert.Equal(("vmem.log:4:1", "ok", "ENOSPC"), (d.Location.ToString(), d.Qemu, d.Model));
        Assert.Equal(["ok", "ok", "ENOSPC"], Run(replay).Steps.Where(s => s.Kind == "map_dma").Select(s => s.Errno ?? "ok"));
        Assert.DoesNotContain("dma_entry_limit", QemuTraceImporter.Import(trace, new QemuTraceImportOptions { DmaEntryLimit = 65535 }).Yaml.Replace("dma_entry_limit: 65535", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_EveryBadOption_OneMessageEach()
    {
        var options = new QemuTraceImportOptions
        {
            Name = "a b",
            PageSize = 8192,
            Iommu = "spapr-tce",
            Kernel = "linux-2.6",
            ApertureBits = 70,
            IommuPageSizes = [4096, 3000],
            Device = "01:00.0",
            Group = -1,
            Memory = 0,
        };

        Assert.Equal(
            [
                "scenario name 'a b' must be letters, digits, '.', '_' or '-'",
                "host page size 0x2000 is not 4KiB, 16KiB or 64KiB",
                "IOMMU 'spapr-tce' is not vt-d, amd-vi or smmu-v3 (the replay is type1's)",
                $"kernel profile 'linux-2.6' is not one of {string.Join(", ", VfioLab.Lab.KernelProfiles.All)}",
                "aperture width 70 bits is outside 12..64",
                "IOMMU page sizes must be one or more powers of two",
                "device '01:00.0' is not a PCI address (0000:01:00.0)",
                "IOMMU group -1 is negative",
                "host memory cannot be 0",
            ],
            QemuTraceImporter.Validate(options));
        Assert.Throws<ArgumentException>(() => QemuTraceImporter.Import(QemuTrace.Parse(string.Empty, "e.log"), options));
    }

    [Fact]
    public void Import_VaddrRangeWrapping_RefusedAtItsLine()
    {
        QemuTrace trace = QemuTrace.Parse("noise\nvfio_dma_map(0x1, 0x0, 0x2000, 0xfffffffffffff000) = -14 (Bad address)\n", "wrap.log");

        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => QemuTraceImporter.Import(trace));

        Assert.Equal("wrap.log:2:1: vfio_dma_map: vaddr 0xfffffffffffff000 + size 0x2000 wraps past 2^64", e.Message);
    }

    [Fact]
    public void Import_VaddrOutsideTheProcessAddressSpace_RefusedAtTheMapReadingFromIt()
    {
        QemuTrace trace = QemuTrace.Parse("vfio_listener_region_del region_del 0x0 - 0xfff\nvfio_listener_region_add_ram region_add [ram] 0x0 - 0xfff [0xffff800000000000]\n", "kernel.log");

        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => QemuTraceImporter.Import(trace));

        Assert.Equal("kernel.log:2:1: vfio_listener_region_add_ram: the process range [0xffff800000000000, 0xffff800000001000) it maps from cannot be mmapped on the replay's host (mmap answered ENOMEM)", e.Message);
    }

    [Fact]
    public void Write_ReplacesAnExistingFileWholeAndLeavesNoTemporaryFile()
    {
        using var dir = new VfioLab.Tests.Cli.TempDirectory();
        string path = dir.Write("replay.yaml", "old\n");
        QemuTraceReplay replay = QemuTraceImporter.Import(QemuTrace.Parse("vfio_listener_region_del region_del 0x0 - 0xfff\n", "del.log"));

        replay.Write(path);

        Assert.Equal(replay.Yaml, File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }
}
