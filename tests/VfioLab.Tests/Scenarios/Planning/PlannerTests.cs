using VfioLab.Scenarios;
using VfioLab.Scenarios.Planning;

namespace VfioLab.Tests.Scenarios.Planning;

/// <summary>The plans the issue asks for, each checked three ways: numbers worked out by hand from QEMU's layout and
/// type1's rules, the planner's rules, and an independent run of the scenario the planner emits for the same VM.</summary>
public sealed class PlannerTests
{
    private const ulong KiB = 1UL << 10;
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;

    /// <summary>The legacy VGA window [0xa0000, 0xc0000) that x86 guests' RAM is not mapped at.</summary>
    private const ulong VgaHole = 128 * KiB;

    private static readonly PlannedDevice Gpu0 = new("gpu0", [16 * MiB, 32 * GiB]);
    private static readonly PlannedDevice Gpu1 = new("gpu1", [16 * MiB, 32 * GiB]);

    [Fact]
    public void Plan_Q35With16GiBAndOneGpu_LocksRamOnceAndMapsFiveSections()
    {
        var plan = new VmPlan { Name = "q35-gpu", RamBytes = 16 * GiB, Backing = RamBacking.Hugetlb1G, Devices = [Gpu0] };

        VmPlanReport report = CheckedAgainstScenarioRun(plan);

        Assert.Equal(16 * GiB - VgaHole, report.MemlockNeededBytes);
        Assert.Equal(5UL, report.DmaEntriesNeeded); // [0, 0xa0000), [0xc0000, 2G), [4G, 18G), two BARs
        Assert.Equal(
            [(0x0UL, 0xa0000UL), (0xc0000UL, 0x7ff40000UL), (4 * GiB, 14 * GiB), (32 * GiB, 32 * GiB), (64 * GiB, 16 * MiB)],
            report.Mappings.Select(m => (m.Iova, m.Size)).ToArray());
        Assert.Equal(17 * GiB, report.Libvirt.LimitBytes);
        Assert.Equal(1 * GiB + VgaHole, report.Libvirt.MarginBytes);
        Assert.Contains("over-provisions", report.Libvirt.Verdict, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_Q35WithVIommuAndTwoGpus_ChargesRamOncePerContainer()
    {
        var plan = new VmPlan { Name = "q35-viommu", RamBytes = 16 * GiB, Backing = RamBacking.Hugetlb1G, Devices = [Gpu0, Gpu1], VIommu = true };

        VmPlanReport report = CheckedAgainstScenarioRun(plan);

        Assert.Equal(2 * (16 * GiB - VgaHole), report.MemlockNeededBytes);
        Assert.Equal(2, report.Figures.Count(f => f.Quantity == "dma_entries"));
        Assert.Equal(7UL, report.DmaEntriesNeeded); // three RAM sections and both GPUs' two BARs, in each container
        Assert.Equal(2, report.Figures.Count(f => f.Quantity == "page_table_bytes"));
        Assert.Equal(33 * GiB, report.Libvirt.LimitBytes);
        Assert.Equal(1 * GiB + (2 * VgaHole), report.Libvirt.MarginBytes);
    }

    [Fact]
    public void Plan_VgpuGuest_ChargesOnlyWhatTheVendorDriverPins()
    {
        var plan = new VmPlan
        {
            Name = "vgpu",
            RamBytes = 8 * GiB,
            Backing = RamBacking.Thp,
            Devices = [new PlannedDevice("vgpu", [], Mediated: true, PinnedBytes: 64 * MiB)],
        };

        VmPlanReport report = CheckedAgainstScenarioRun(plan);

        Assert.Equal(64 * MiB, report.MemlockNeededBytes);
        Assert.Equal(3UL, report.DmaEntriesNeeded);
        Assert.DoesNotContain(report.Figures, f => f.Quantity == "ioptes"); // an emulated group has no IOMMU domain
        Assert.Equal(9 * GiB, report.Libvirt.LimitBytes);
        Assert.Equal(9 * GiB - 64 * MiB, report.Libvirt.MarginBytes);
    }

    [Fact]
    public void Plan_OneTebibyteGuestOnGigabytePages_UsesGigabyteIoptes()
    {
        var plan = new VmPlan { Name = "big", RamBytes = 1UL << 40, Backing = RamBacking.Hugetlb1G, Devices = [Gpu0] };

        VmPlanReport report = CheckedAgainstScenarioRun(plan);

        Assert.Equal((1UL << 40) - VgaHole, report.MemlockNeededBytes);
        // [0xc0000, 2G): 4K up to 2M, 2M up to 1G, one 1G; above 4G: 1022 x 1G; the 32G BAR: 32 x 1G; 16M BAR: 8 x 2M.
        Assert.Equal(1UL + 1022 + 32, Figure(report, "ioptes_1G").Needed);
        Assert.Equal(511UL + 8, Figure(report, "ioptes_2M").Needed);
        Assert.Equal(160UL + 320, Figure(report, "ioptes_4K").Needed);
    }

    [Fact]
    public void Plan_AmdHostWithRamReachingTheHyperTransportHole_MovesAbove4GRamTo1TiB()
    {
        var plan = new VmPlan { Name = "amd-big", RamBytes = 1UL << 40, Backing = RamBacking.Hugetlb1G, HostIommu = "amd-vi", Devices = [Gpu0] };

        VmPlanReport report = CheckedAgainstScenarioRun(plan);

        PlannedMapping high = report.Mappings.Single(m => m.Kind == "ram" && m.Iova >= 4 * GiB);
        Assert.Equal(1UL << 40, high.Iova);
        Assert.Equal((1UL << 40) - (2 * GiB), high.Size);
        Assert.Contains("HyperTransport", high.Label, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_VirtioMemNearDmaEntryLimit_CountsOneEntryPerPluggedBlock()
    {
        // A host with dma_entry_limit 4096: 4 GiB of boot RAM in 3 sections, one BAR, and 4092 plugged 2 MiB blocks
        // make 4096 mappings, the limit exactly. (A scenario file holds at most 200000 YAML nodes, about 18000
        // MAP_DMA steps, so the model's run is checked at this limit rather than at the default 65535.)
        var plan = new VmPlan
        {
            Name = "vmem",
            RamBytes = 4 * GiB,
            Backing = RamBacking.Hugetlb2M,
            Devices = [new PlannedDevice("nic", [1 * MiB])],
            VirtioMem = new VirtioMemPlan(16 * GiB, 2 * MiB, 4092 * 2 * MiB),
            DmaEntryLimit = 4096,
        };

        VmPlanReport report = CheckedAgainstScenarioRun(plan);

        Assert.Equal(4096UL, report.DmaEntriesNeeded);
        Assert.Empty(report.Shortfalls(null, 4096));
        string shortfall = Assert.Single(report.Shortfalls(null, 4000));
        Assert.Contains("dma_entry_limit 4000 is 96 entries short of the 4096", shortfall, StringComparison.Ordinal);
        Assert.Equal(4 * GiB - VgaHole + (4092 * 2 * MiB), report.MemlockNeededBytes);
        // libvirt counts the whole virtio-mem region as guest memory: 4 + 16 GiB, + 1 GiB.
        Assert.Equal(21 * GiB, report.Libvirt.LimitBytes);
    }

    [Fact]
    public void Plan_MemlockBelowNeed_ShortfallSaysByHowMuch()
    {
        var plan = new VmPlan { Name = "tight", RamBytes = 2 * GiB, Backing = RamBacking.Hugetlb2M, Devices = [Gpu0] };

        VmPlanReport report = Planner.Plan(plan);

        string shortfall = Assert.Single(report.Shortfalls(1 * GiB, null));
        Assert.StartsWith("RLIMIT_MEMLOCK 1 GiB is 1048448 KiB (~1023.88 MiB) short of the", shortfall, StringComparison.Ordinal);
        Assert.Empty(report.Shortfalls(2 * GiB, 65535));
    }

    [Fact]
    public void Validate_BadPlan_NamesEveryProblem()
    {
        var plan = new VmPlan
        {
            RamBytes = 3 * MiB,
            Backing = RamBacking.Hugetlb2M,
            HostIommu = "smmu-v3",
            Devices = [new PlannedDevice("gpu", [3 * MiB]), new PlannedDevice("gpu", [])],
        };

        IReadOnlyList<string> errors = Planner.Validate(plan);

        Assert.Contains(errors, e => e.Contains("guest RAM 0x300000", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("does not go with machine q35", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("BAR size 0x300000", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("used twice", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => Planner.Plan(plan));
    }

    [Fact]
    public void Plan_VirtioMemAtTheDefaultLimit_IsMeasuredInOneScenarioFile()
    {
        // 65531 plugged blocks, one MAP_DMA step each: the scenario file's node budget (a million written nodes)
        // holds them, so the model runs the whole sequence and every rule is measured.
        var plan = new VmPlan
        {
            Name = "vmem-default-limit",
            RamBytes = 4 * GiB,
            Backing = RamBacking.Hugetlb2M,
            Devices = [new PlannedDevice("nic", [1 * MiB])],
            VirtioMem = new VirtioMemPlan(128 * GiB, 2 * MiB, 65531 * 2 * MiB),
        };

        VmPlanReport report = Planner.Plan(plan);

        Assert.Equal(65535UL, report.DmaEntriesNeeded);
        Assert.True(report.ModelPassed, string.Join("; ", report.ModelProblems));
        Assert.True(report.ModelAgrees, string.Join("; ", report.ModelProblems));
        Assert.All(report.Figures, f => Assert.NotNull(f.Measured));
        Assert.Single(report.Shortfalls(null, 65534));
        Assert.Empty(report.Shortfalls(null, 65535));
    }

    private static PlanFigure Figure(VmPlanReport report, string quantity) => report.Figures.Single(f => f.Quantity == quantity);

    /// <summary>Plans the VM, then runs the scenario the planner emits on a host of its own and holds every rule's
    /// number against that run's sizing report.</summary>
    private static VmPlanReport CheckedAgainstScenarioRun(VmPlan plan)
    {
        VmPlanReport report = Planner.Plan(plan);
        Assert.True(report.ModelPassed, string.Join('\n', report.ModelProblems));

        ScenarioDocument doc = ScenarioDocument.Parse(Planner.EmitScenario(plan), "emitted.yaml");
        ScenarioOutcome run = ScenarioRunner.Prepare(doc, new RunOptions { CheckInvariants = false, Sizing = true }).Execute();
        Assert.True(run.Passed, string.Join('\n', run.Steps.Where(s => !s.Passed)));
        SizingReport sizing = run.Sizing!;

        Assert.Equal(report.MemlockNeededBytes, Assert.Single(sizing.Processes).PeakLockedBytes);
        Assert.Equal(report.Figures.Where(f => f.Quantity == "dma_entries").Select(f => f.Needed), sizing.Containers.Select(c => c.PeakMappings));
        Assert.Equal(report.Figures.Where(f => f.Quantity == "ioptes").Select(f => f.Needed), sizing.Domains.Select(d => d.PeakEntries));
        Assert.Equal(report.Figures.Where(f => f.Quantity == "page_table_bytes").Select(f => f.Needed), sizing.Domains.Select(d => d.PeakTableBytes));
        foreach ((PlanFigure figure, DomainSizing domain) in report.Figures.Where(f => f.Quantity == "ioptes").Zip(sizing.Domains))
        {
            var bySize = report.Figures.Where(f => f.Subject == figure.Subject && f.Quantity.StartsWith("ioptes_", StringComparison.Ordinal))
                .Select(f => f.Needed).ToArray();
            Assert.Equal(bySize, domain.EntriesAtPeak.Select(e => e.Value).ToArray());
        }
        Assert.True(report.ModelAgrees, string.Join('\n', report.Figures.Where(f => !f.Agrees)));
        return report;
    }
}
