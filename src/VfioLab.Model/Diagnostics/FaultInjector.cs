namespace VfioLab.Diagnostics;

/// <summary>
/// Injectable failure of the model's fallible internal steps (iommufd's fail_nth, STYLE.md 14).
/// Every fallible step calls <see cref="ShouldFail"/> with its <see cref="FaultSite"/> (<c>pin</c>, <c>lock_acct</c>,
/// <c>iommu_map</c>, <c>dma_alloc</c>, <c>bitmap_alloc</c>, ...; defined once there, described in the READMEs of Host,
/// Iommu, Type1, Vfio and Simulation, and swept in tests/VfioLab.Tests/FailNth); when armed, the n-th call counted from arming fails, once.
/// Tests sweep n = 1, 2, ... until an operation succeeds and check that each failure left the state
/// exactly as before.
/// </summary>
/// <remarks>Thread-safe through Interlocked; deterministic for a deterministic call sequence.</remarks>
internal sealed class FaultInjector
{
    private long _countdown;
    private FaultSite? _site;
    private long _calls;

    /// <summary>Fallible calls seen since the last <see cref="Arm"/>.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Whether a failure is armed and has not fired: while false, <see cref="ShouldFail"/> returns false and
    /// counts nothing, so a caller may skip asking it (the bulk populate, <c>PhysicalMemory.AllocateRuns</c>).</summary>
    public bool Armed => Volatile.Read(ref _countdown) > 0;

    /// <summary>Whether the armed failure has fired.</summary>
    public bool Fired { get; private set; }

    /// <summary>Fails the <paramref name="nth"/> (1-based) fallible call, or the n-th at
    /// <paramref name="site"/> only when a site is given. 0 disarms.</summary>
    public void Arm(long nth, FaultSite? site = null)
    {
        _site = site;
        Fired = false;
        Interlocked.Exchange(ref _calls, 0);
        Interlocked.Exchange(ref _countdown, nth);
    }

    /// <summary>Called by a fallible step; true means the step must fail as if the resource were short.</summary>
    public bool ShouldFail(FaultSite site)
    {
        // The disarmed test is a plain 64-bit load (atomic on the 64-bit runtimes .NET 10 ships): Interlocked.Read is a
        // locked compare-exchange, and this is asked per chunk of every MAP, a page of memory shattered into 1-page
        // runs (issue 16). Arm's Interlocked.Exchange publishes the countdown; the decrement below stays interlocked.
        if (Volatile.Read(ref _countdown) <= 0 || (_site is not null && _site != site))
        {
            return false;
        }
        Interlocked.Increment(ref _calls);
        if (Interlocked.Decrement(ref _countdown) == 0)
        {
            Fired = true;
            return true;
        }
        return false;
    }
}
