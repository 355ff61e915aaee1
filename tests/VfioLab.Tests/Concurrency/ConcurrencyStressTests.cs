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

        var run = new StressRun(workers, seed, Rounds, OpsPerRound, round => Reconcile(rig, workers, mdev, limit));
        string? failure = run.Execute(stall: TimeSpan.FromSeconds(60));

        Assert.True(failure is null, failure);
        Assert.Equal((long)workers.Length * Rounds * OpsPerRound + Rounds, run.Operations);
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

    private static string? Reconcile(StressRig rig, StressWorker[] workers, MdevWorker mdev, uint limit)
    {
        string violations = rig.Violations();
        if (violations.Length > 0)
        {
            return $"invariants: {violations}";
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
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }
}
