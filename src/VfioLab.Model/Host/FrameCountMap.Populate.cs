using VfioLab.Collections;

namespace VfioLab.Host;

// Populate: the scattered allocator's reads ahead and its writes into windows it is about to shatter (issue 16).
internal sealed partial class FrameCountMap
{
    /// <summary>Runs a window may hold in the run map before it turns dense: a populate that takes more slots than this
    /// per window of RAM shatters the windows it touches anyway (see <see cref="SetShattering"/>).</summary>
    public int DenseAbove => _denseAbove;

    /// <summary><see cref="Set"/> for a range inside one window that is about to be shattered: a sparse window is made
    /// dense first (its runs copied into the array), whatever its runs. For a populate that takes frames from every
    /// window at random, many times more than <see cref="DenseAbove"/> per window: the window would turn dense after
    /// that many edits anyway, and until then each take split a run of a run map of ~a million runs (free) or inserted
    /// one (references), tree descents with their cache misses that cost a fifth of populating 64 GiB on 1-page runs
    /// for the ~7 % of frames taken while windows were sparse. A range across windows, a window whose counts do not fit
    /// a <c>ushort</c>, or one whose array would hold no count afterwards is left to <see cref="Set"/>.</summary>
    public void SetShattering(ulong start, ulong last, ulong count)
    {
        ulong window = start >> WindowShift;
        if ((last >> WindowShift) == window && count <= ushort.MaxValue && DenseAt(window) is null)
        {
            ForceDense(window, count != 0);
        }
        Set(start, last, count);
    }

    // Makes sparse window `window` dense whatever its runs, unless a count does not fit a ushort or the window has no
    // count and none is about to be set (an empty dense window is not a valid state).
    private void ForceDense(ulong window, bool aboutToSet)
    {
        ulong ws = window << WindowShift;
        ulong we = ws + WindowMask;
        int nonZero = 0;
        foreach (Run<FrameCount> r in _runs.Overlapping(ws, we))
        {
            if (r.Value.Count > ushort.MaxValue)
            {
                return;
            }
            nonZero += (int)(Math.Min(r.Last, we) - Math.Max(r.Start, ws) + 1);
        }
        if (nonZero == 0 && !aboutToSet)
        {
            return;
        }
        var counts = new ushort[WindowFrames];
        foreach (Run<FrameCount> r in _runs.Overlapping(ws, we))
        {
            ulong a = Math.Max(r.Start, ws) - ws;
            ulong b = Math.Min(r.Last, we) - ws;
            counts.AsSpan((int)a, (int)(b - a + 1)).Fill((ushort)r.Value.Count);
        }
        if (nonZero != 0)
        {
            _runs.Remove(ws, we);
        }
        ref Slot slot = ref SlotFor(window);
        slot.Counts = counts;
        slot.NonZero = nonZero;
        slot.Edits = 0;
        _windows.MarkDense(window);
    }

    /// <summary>Reads the count of the first frame of each slot <c>slots[i] * slotFrames</c> that lies in a dense window
    /// and returns their sum (so the reads are kept); frames in sparse windows are skipped. Changes nothing.</summary>
    /// <remarks>The scattered allocator calls this for the next few hundred slots of its permutation before taking any:
    /// each slot lands in a random window of RAM, one cache miss in the free map and one in the reference map per slot
    /// when the slots are taken one after the other (on 72 GiB, 37 MB per map), while these reads are independent of one
    /// another and of the allocation, so the CPU has many of them in flight at once and the taking finds the lines in
    /// cache. Measured on the shattered-64g scenario: docs/benchmarks.md, 2026-12-07 "populate".</remarks>
    public ulong Touch(ReadOnlySpan<ulong> slots, ulong slotFrames)
    {
        if (_windows.DenseCount == 0)
        {
            return 0;
        }
        ulong sum = 0;
        foreach (ulong slot in slots)
        {
            ulong frame = slot * slotFrames;
            if (DenseAt(frame >> WindowShift) is { } counts)
            {
                sum += counts[(int)(frame & WindowMask)];
            }
        }
        return sum;
    }

    /// <summary>Sets to <paramref name="count"/> each frame <c>window * WindowFrames + offsets[i]</c> whose count is
    /// <paramref name="expect"/> (any count when null), and leaves in <paramref name="offsets"/>, in their order, only the
    /// offsets it set; returns how many. The offsets are distinct and ascending, inside window <paramref name="window"/>.
    /// With <paramref name="shattering"/> a sparse window is made dense first, as <see cref="SetShattering"/> does.</summary>
    /// <remarks>The bulk populate's write (<c>PhysicalMemory.AllocateRuns</c>): the frames a batch of permutation slots
    /// takes, a window at a time in frame order, so the window's counts are read and written front to back instead of
    /// one random line per frame per map. The counts come out as one <see cref="Set"/> of each frame in turn would leave
    /// them; a dense window's representation checks (dropped when empty, back to a run when filled with one count, the
    /// recheck after <see cref="DenseRecheck"/> edits) run once at the end of the window with all its edits counted,
    /// which can change when a window changes form but never what a read returns.</remarks>
    public int SetFramesWhere(ulong window, Span<ushort> offsets, ushort? expect, ushort count, bool shattering)
    {
        if (offsets.IsEmpty)
        {
            return 0;
        }
        ulong ws = window << WindowShift;
        if (shattering && DenseAt(window) is null)
        {
            ForceDense(window, count != 0);
        }
        ref Slot slot = ref DenseSlot(window);
        int kept = 0;
        if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref slot))
        {
            // Sparse: frame by frame through the general paths (which may turn the window dense part-way).
            foreach (ushort o in offsets)
            {
                ulong frame = ws + o;
                if (expect is null || CountAt(frame) == expect.Value)
                {
                    Set(frame, frame, count);
                    offsets[kept++] = o;
                }
            }
            return kept;
        }
        ushort[] counts = slot.Counts!;
        int nonZero = slot.NonZero;
        bool grew = false;
        foreach (ushort o in offsets)
        {
            ushort was = counts[o];
            if (expect is null || was == expect.Value)
            {
                counts[o] = count;
                nonZero += (count != 0 ? 1 : 0) - (was != 0 ? 1 : 0);
                grew |= was == 0 && count != 0;
                offsets[kept++] = o;
            }
        }
        slot.NonZero = nonZero;
        if (kept > 0)
        {
            AfterDenseEdits(window, ref slot, kept, grew);
        }
        return kept;
    }
}
