using VfioLab.Collections;

namespace VfioLab.Host;

// Read-only views of the frame run maps for whole-state digests (Checks/StateDigest), one visit per
// run under the leaf lock: cost follows runs, never frames.
internal sealed partial class PhysicalMemory
{
    /// <summary>Calls <paramref name="visit"/> with (first pfn, last pfn, pin count) for every run of pinned
    /// frames, in pfn order, under the memory's lock (the callback must not call back into memory).</summary>
    public void VisitPinRuns(Action<ulong, ulong, ulong> visit)
    {
        using (_gate.EnterScope())
        {
            foreach (Run<FrameCount> r in _pins.All())
            {
                visit(r.Start, r.Last, r.Value.Count);
            }
        }
    }

    /// <summary>The maximal runs of frames marked dirty (PG_dirty), in pfn order (tests: StateDigest leaves PG_dirty out,
    /// so a twin test that must also hold the dirty bits compares these).</summary>
    internal List<(ulong First, ulong Last)> DirtyRunsForTests()
    {
        using (_gate.EnterScope())
        {
            return [.. _dirty.All()];
        }
    }

    /// <summary>How many windows of each frame map are dense (tests: that a shattered layout exercises the dense form).</summary>
    internal (int Free, int Refs, int Pins, int Dirty) DenseWindowsForTests()
    {
        using (_gate.EnterScope())
        {
            return (_free.DenseWindowCount, _refs.DenseWindowCount, _pins.DenseWindowCount, _dirty.DenseWindowCount);
        }
    }
}
