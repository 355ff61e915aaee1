using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Diagnostics;
using VfioLab.Simulation;

namespace VfioLab.Tests.FailNth;

/// <summary>
/// The fail-nth loop (STYLE.md 14, iommufd's fail_nth): for n = 1, 2, ... arm the host's fault injector to
/// fail the n-th fallible step (at one site, or any), run the operation, and when the fault fired require
/// one of the allowed errnos and the whole VFIO state digest (<see cref="StateDigest"/>) and the free frame
/// count exactly as before; stop at the first n where the fault no longer fires (the operation ran every
/// step), which must succeed.
/// </summary>
internal static class FailNthSweep
{
    /// <summary>Sweeps <paramref name="operation"/>; returns how many failure points it has.</summary>
    /// <param name="host">The host whose injector, digest and memory are used.</param>
    /// <param name="operation">One call; returns its raw result (&gt;= 0 or -errno).</param>
    /// <param name="allowed">The errnos an injected failure may produce.</param>
    /// <param name="site">One fault site, or null for any.</param>
    /// <param name="framesExact">Whether the free frame count must be unchanged too; false where Linux keeps
    /// what a failed call faulted in (GUP populates pages before a later step fails).</param>
    /// <param name="undo">Where a step's failure has a fallback in Linux (the operation then succeeds anyway),
    /// undoes that success so the sweep goes on from the same state; null when such a success is a bug.</param>
    /// <param name="linuxKeeps">Where Linux's unwind itself leaves a trace (vfio-pci's close_device resets the
    /// function it just enabled), rewrites each digest line to drop that one field before the comparison; the
    /// test asserts the trace exactly elsewhere. Null compares every line as it is.</param>
    public static int Run(SimulatedHost host, Func<long> operation, Errno[] allowed, FaultSite? site = null, bool framesExact = true, Action? undo = null,
        Func<string, string>? linuxKeeps = null)
    {
        for (int n = 1; ; n++)
        {
            Assert.True(n < 100_000, "the operation never ran to the end");
            StateDigest before = StateDigest.Of(host);
            ulong freeBefore = host.Machine.Memory.FreeFrameCount;
            host.Machine.Faults.Arm(n, site);
            long ret = operation();
            bool fired = host.Machine.Faults.Fired;
            host.Machine.Faults.Arm(0);
            if (!fired)
            {
                Assert.True(ret >= 0, $"n={n}: no fault injected, yet {ErrnoExtensions.FromReturn(ret)}");
                return n - 1;
            }
            if (ret >= 0 && undo is not null)
            {
                undo();
                Assert.True(StateDigest.Of(host).Equals(before), $"{site?.Name ?? "any"} n={n}: absorbed failure, undo left {StateDigest.Of(host).FirstDifference(before)}");
                continue;
            }
            Assert.True(ret < 0 && Array.Exists(allowed, e => e.AsReturn() == ret),
                $"{site?.Name ?? "any"} n={n}: expected one of {string.Join("/", allowed)}, got {(ret < 0 ? ErrnoExtensions.FromReturn(ret).ToString() : ret.ToString(System.Globalization.CultureInfo.InvariantCulture))}");
            StateDigest after = StateDigest.Of(host);
            if (linuxKeeps is null)
            {
                Assert.True(after.Equals(before), $"{site?.Name ?? "any"} n={n}: state changed: {after.FirstDifference(before)}");
            }
            else
            {
                string[] b = [.. before.Lines.Select(linuxKeeps)];
                string[] a = [.. after.Lines.Select(linuxKeeps)];
                Assert.True(a.AsSpan().SequenceEqual(b), $"{site?.Name ?? "any"} n={n}: state changed: {after.FirstDifference(before)}");
            }
            Assert.True(!framesExact || freeBefore == host.Machine.Memory.FreeFrameCount,
                $"{site?.Name ?? "any"} n={n}: free frames {freeBefore} -> {host.Machine.Memory.FreeFrameCount} (leak)");
        }
    }
}
