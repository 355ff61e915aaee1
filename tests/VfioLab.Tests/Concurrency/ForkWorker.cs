using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Tests.Concurrency;

/// <summary>Forks the process (its pinned pages are copied for the child at fork), lets the child write
/// memory, and exits the child: nothing of the child may stay charged or pinned. The child inherits every
/// fd and mapping of "vmm", so a file another worker closes lives on until the child exits:
/// <see cref="Started"/> and <see cref="Exited"/> let that worker tell whether a child may still hold it.</summary>
internal sealed class ForkWorker(StressRig rig, ulong privateVaddr) : StressWorker(rig, "fork")
{
    private long _started;
    private long _exited;

    public override int Mappings => 0;

    public override ulong ChargedPages => 0;

    public override ulong PagePins => 0;

    /// <summary>Forks begun: counted before the fd table is copied.</summary>
    public long Started => Interlocked.Read(ref _started);

    /// <summary>Children gone: counted after their exit released everything they held. Children exit in
    /// the order they were forked (one thread forks), so every child numbered below this is gone.</summary>
    public long Exited => Interlocked.Read(ref _exited);

    public override void Step(Random rng)
    {
        Position = "fork";
        Interlocked.Increment(ref _started);
        Process? child = null;
        try
        {
            Errno e = Rig.Process.TryFork(out child);
            Expect(e == Errno.None && child is not null, $"fork: {e}");
            Position = "child writes";
            long w = child!.Syscalls.WriteMemory(privateVaddr + ((ulong)rng.Next(16) * 8), [1, 2, 3, 4, 5, 6, 7, 8]);
            Expect(w == 0, $"child write: {E(w)}");
            Position = "child exits";
            child.Exit();
            Expect(child.LastMm.LockedVm == 0, $"child locked_vm {child.LastMm.LockedVm} after exit");
        }
        finally
        {
            // A failed step still ends its child, so no worker waits for a file the child holds.
            child?.Exit();
            Interlocked.Increment(ref _exited);
        }
    }
}
