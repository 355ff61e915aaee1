using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Tests.Concurrency;

/// <summary>
/// One thread of the stress: a seeded sequence of operations on state it alone owns (its IOVA ranges,
/// its memory, its pins, dirty tracking, the GPU's resets), so the result of every call is known in
/// advance whatever the other threads do, and what it expects to be mapped, charged and pinned is exact.
/// </summary>
internal abstract class StressWorker(StressRig rig, string name)
{
    protected StressRig Rig { get; } = rig;

    public string Name { get; } = name;

    /// <summary>What the thread is doing now, for the watchdog's report.</summary>
    public volatile string Position = "not started";

    /// <summary>Mappings this worker holds now.</summary>
    public abstract int Mappings { get; }

    /// <summary>Pages this worker's mappings and pins charge to <c>locked_vm</c>.</summary>
    public abstract ulong ChargedPages { get; }

    /// <summary>Page pins this worker's mappings and external pins hold (with multiplicity).</summary>
    public abstract ulong PagePins { get; }

    /// <summary>One operation, chosen by <paramref name="rng"/>; throws <see cref="StressFailure"/> when a
    /// result differs from what this worker's own state predicts.</summary>
    public abstract void Step(Random rng);

    /// <summary>At a barrier (no call in flight, every forked child gone): what differs from this worker's
    /// own state beyond the shared sums the test reconciles, or null.</summary>
    public virtual string? CheckQuiescent() => null;

    protected ISyscallSurface Sys => Rig.Sys;

    protected ulong PageSize => Rig.PageSize;

    protected static void Expect(bool condition, string what)
    {
        if (!condition)
        {
            throw new StressFailure(what);
        }
    }

    protected static string E(long ret) => ret >= 0 ? ret.ToString(System.Globalization.CultureInfo.InvariantCulture) : ErrnoExtensions.FromReturn(ret).ToString();
}
