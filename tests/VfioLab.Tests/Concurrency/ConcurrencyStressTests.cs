using VfioLab.Simulation;

namespace VfioLab.Tests.Concurrency;

/// <summary>
/// Threads of one process issue MAP/UNMAP, dirty START/STOP/GET and UNMAP with a bitmap, mdev
/// pin/unpin/dma_rw with unmap notifications, fork-and-exit, device reset, memory disable, hot reset and
/// BAR accesses on one container at once. Each thread's operations are seeded and its own results
/// predicted exactly (the interleaving is the OS's); every thread must make progress (a watchdog reports
/// positions on a stall); at every quiescent point the invariants hold and <c>locked_vm</c>, page pins,
/// driver pins, mappings and <c>dma_avail</c> reconcile exactly with what succeeded; teardown leaves
/// nothing pinned or charged. The debug lock-order tracker checks every acquisition meanwhile.
/// </summary>
public sealed class ConcurrencyStressTests
{
    private const int Rounds = 8;
    private const int OpsPerRound = 20;
    private const int ChurnRounds = 16;
    private const int ChurnOpsPerRound = 60;

    [Theory]
    [InlineData(1, KernelSettings.Seeds)]
    [InlineData(2, KernelSettings.Seeds)]
    [InlineData(3, KernelSettings.Linux618)]
    public void Workers_RunConcurrently_ProgressAndAccountingReconcileAtEveryQuiescentPoint(int seed, string profile)
    {
        var rig = new StressRig(KernelSettings.Default with { Profile = profile });
        var map0 = new MapWorker(rig, 0);
        var dirty = new DirtyWorker(rig);
        var mdev = new MdevWorker(rig);
        StressWorker[] workers = [map0, new MapWorker(rig, 1), dirty, mdev, new ForkWorker(rig, map0.AnyVaddr), new DeviceWorker(rig), new BarWorker(rig)];
        uint limit = rig.Backend.Behavior.DmaEntryLimit;

        var run = new StressRun(workers, seed, Rounds, OpsPerRound, round => Reconcile(rig, workers, mdev, limit, null));
        string? failure = run.Execute(stall: TimeSpan.FromSeconds(60));

        Assert.True(failure is null, failure);
        Assert.Equal((long)workers.Length * Rounds * OpsPerRound + Rounds, run.Operations);
        AssertTeardownClean(rig);
    }

    /// <summary>
    /// The same seven workers plus the NIC's group attaching to and detaching from the shared container
    /// (a second IOMMU unit without 1 GiB pages: every attach allocates a domain and replays every mapping
    /// while the map workers map and unmap), its group fd closed and reopened, its device fd opened and
    /// closed with its BAR mmapped, touched, reset and unmapped; and a second process with a container of
    /// its own on the same IOMMU unit mapping under a memlock limit, exiting and spawned again. At every
    /// quiescent point, besides the reconciliation above: every domain translates every mapping (the
    /// invariants), the NIC's group, device and domain count match its worker, the second process's
    /// mappings, <c>dma_avail</c> and <c>locked_vm</c> match, and the host's free frames return to the
    /// baseline less what the second process holds (nothing leaked by an exit or a child).
    /// </summary>
    [Theory]
    [InlineData(11, KernelSettings.Seeds)]
    [InlineData(12, KernelSettings.Seeds)]
    [InlineData(13, KernelSettings.Linux618)]
    [InlineData(14, KernelSettings.Linux618)]
    public void WorkersWithGroupChurnAndSecondProcess_RunConcurrently_ProgressAndAccountingReconcileAtEveryQuiescentPoint(int seed, string profile) =>
        RunWithChurn(seed, profile, ChurnRounds, ChurnOpsPerRound);

    /// <summary>The run of the test above with <paramref name="rounds"/> rounds of <paramref name="opsPerRound"/>
    /// operations per thread (the soak runs it longer, from many seeds).</summary>
    internal static void RunWithChurn(int seed, string profile, int rounds, int opsPerRound)
    {
        var rig = new StressRig(KernelSettings.Default with { Profile = profile });
        var map0 = new MapWorker(rig, 0);
        var mdev = new MdevWorker(rig);
        var fork = new ForkWorker(rig, map0.AnyVaddr);
        var nic = new NicWorker(rig, fork);
        var vmm2 = new SecondProcessWorker(rig);
        StressWorker[] workers = [map0, new MapWorker(rig, 1), new DirtyWorker(rig), mdev, fork, new DeviceWorker(rig), new BarWorker(rig), nic, vmm2];
        uint limit = rig.Backend.Behavior.DmaEntryLimit;
        ulong freeFrames = rig.Host.Machine.Memory.FreeFrameCount;

        var run = new StressRun(workers, seed, rounds, opsPerRound, round => Reconcile(rig, workers, mdev, limit, freeFrames - vmm2.FramesInUse));
        string? failure = run.Execute(stall: TimeSpan.FromSeconds(60));

        Assert.True(failure is null, $"{profile}, {failure}");
        Assert.Equal((long)workers.Length * rounds * opsPerRound + rounds, run.Operations);
        Assert.True(nic.Attaches > 0 && nic.P2p.Made > 0 && vmm2.Lives > 0,
            $"seed {seed}: {nic.Attaches} attach(es), {nic.P2p.Made} p2p mapping(s), {vmm2.Lives} exit(s): the churn did not run");
        nic.Close();
        vmm2.Close();
        // The kworker: the seeds profile's deferred notifier unregistrations drop the device references.
        rig.Host.Machine.Work.RunAll();
        Assert.Equal(0, rig.Host.Devices["nic"].Vfio!.References);
        Assert.Equal(freeFrames, rig.Host.Machine.Memory.FreeFrameCount);
        AssertTeardownClean(rig);
    }

    private static void AssertTeardownClean(StressRig rig)
    {
        // Teardown: closing every fd releases the container (while the mm is alive, so un-charging reaches it);
        // nothing stays pinned, charged or mapped. The BAR mmap holds the GPU's device file: unmapped first.
        Assert.Equal(0, rig.Sys.Munmap(rig.BarVaddr, StressRig.BarMapSize));
        foreach (int fd in new[] { rig.GpuFd, rig.AudioFd, rig.MdevFd, rig.GpuGroupFd, rig.AudioGroupFd, rig.MdevGroupFd, rig.Container })
        {
            Assert.Equal(0, rig.Sys.Close(fd));
        }
        Assert.Equal(0UL, rig.Process.LastMm.LockedVm);
        Assert.Equal(0UL, rig.Host.Machine.Memory.TotalPins);
        Assert.Equal(0UL, rig.Driver.PinsHeld);
        Assert.Equal(string.Empty, rig.Violations());
    }

    private static string? Reconcile(StressRig rig, StressWorker[] workers, MdevWorker mdev, uint limit, ulong? freeFrames)
    {
        string violations = rig.Violations();
        if (violations.Length > 0)
        {
            return $"invariants: {violations}";
        }
        foreach (StressWorker w in workers)
        {
            if (w.CheckQuiescent() is { } own)
            {
                return $"{w.Name}: {own}";
            }
        }
        ulong mappings = (ulong)workers.Sum(w => w.Mappings);
        ulong charged = workers.Aggregate(0UL, (s, w) => s + w.ChargedPages);
        ulong pins = workers.Aggregate(0UL, (s, w) => s + w.PagePins);
        var problems = new List<string>();
        if (rig.Backend.MappingCount != mappings)
        {
            problems.Add($"mappings {rig.Backend.MappingCount}, expected {mappings}");
        }
        if (rig.Backend.DmaAvail != limit - mappings)
        {
            problems.Add($"dma_avail {rig.Backend.DmaAvail}, expected {limit - mappings}");
        }
        if (rig.Process.LastMm.LockedVm != charged)
        {
            problems.Add($"locked_vm {rig.Process.LastMm.LockedVm}, expected {charged}");
        }
        if (rig.Host.Machine.Memory.TotalPins != pins)
        {
            problems.Add($"page pins {rig.Host.Machine.Memory.TotalPins}, expected {pins}");
        }
        if (rig.Driver.PinsHeld != mdev.DriverPins)
        {
            problems.Add($"driver pins {rig.Driver.PinsHeld}, expected {mdev.DriverPins}");
        }
        if (freeFrames is { } free && rig.Host.Machine.Memory.FreeFrameCount != free)
        {
            problems.Add($"free frames {rig.Host.Machine.Memory.FreeFrameCount}, expected {free}");
        }
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }
}
