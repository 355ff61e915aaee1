namespace VfioLab.Collections;

// The runs of a range handed to a struct visitor, read straight from the leaves (Visit, and VisitPacked below): what a
// streamed unmap of an IOMMU table reads (issue 16).
//
// Why: on memory shattered into 1-page runs an UNMAP reads one IOPTE run per page. Through the enumerator each run was
// a MoveNext (a version check, the leaf form tested three times, a Run built and clipped) and then a MappedRun built and
// added to a list that was walked twice more (the removal's counts, the frames to unpin); here a packed leaf is read
// as one word per run in a loop, and the visitor consumes each run where it is read. It sees exactly the runs, clipped
// values included, that Overlapping enumerates; the map must not change during the walk.
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    /// <summary>Calls <paramref name="visitor"/> for each run overlapping <c>[start, last]</c>, clipped to it, in key
    /// order, as <see cref="Overlapping"/> would enumerate them, until it returns false or the range ends. The visitor
    /// must not change the map.</summary>
    public void Visit<TVisitor>(ulong start, ulong last, ref TVisitor visitor)
        where TVisitor : struct, IRunVisitor<T>, allows ref struct
    {
        if (start > last || !FindAtOrAfter(start, out Leaf? leaf, out int i))
        {
            return;
        }
        int version = _version;
        while (true)
        {
            int count = leaf.Count;
            if (PackedForm && leaf.Packed is { } packed)
            {
                ulong unit = packed[1];
                ulong runStart = packed[0] + ((ulong)i * unit);
                for (; i < count; i++, runStart += unit)
                {
                    if (runStart > last)
                    {
                        return;
                    }
                    ulong runLast = runStart + (unit - 1);
                    T value = T.Unpack(packed[i + Leaf.Header]);
                    if (runStart < start || runLast >= last)
                    {
                        // The first or last run of the range may be cut by it.
                        ulong s = Math.Max(runStart, start);
                        if (!visitor.Visit(s, Math.Min(runLast, last), s == runStart ? value : value.Advance(s - runStart)) || runLast >= last)
                        {
                            return;
                        }
                    }
                    else if (!visitor.Visit(runStart, runLast, value))
                    {
                        return;
                    }
                }
            }
            else if (!VisitSparseLeaf(leaf, i, start, last, ref visitor))
            {
                return;
            }
            System.Diagnostics.Debug.Assert(version == _version, "the map changed during Visit");
            if (leaf.Next is not { } next)
            {
                return;
            }
            leaf = next;
            i = 0;
        }
    }

    // Visit with a packed leaf's words handed over a leaf at a time (VisitPacked): what the invariant checker reads of an
    // IOMMU table after a MAP of shattered memory (issue 16).
    //
    // Why: the check after the 64 GiB scenario's MAP reads 16.8 M one-page runs once, in `vfiolab run`. Through Visit each
    // run is a call of the visitor from the walk's loop, which runs once, so the runtime replaces its first code on stack
    // (OSR): with the checker's per-run work inlined there it spilled most of its state to the stack and took ~15 ns a run.
    // Given a packed leaf's words at once, the visitor walks them in a loop of its own (optimized from its first call);
    // the walk itself then does one call per leaf.
    /// <summary><see cref="Visit"/>, except that the runs of a packed leaf lying wholly inside the range are handed to
    /// <see cref="IPackedRunVisitor{T}.VisitPacked"/> as the leaf stores them; runs cut by the range and those of sparse
    /// leaves go to <see cref="IRunVisitor{T}.Visit"/>, clipped as Visit clips them. The visitor sees the same runs, in
    /// the same order, as <see cref="Visit"/> would hand it, until it returns false. It must not change the map.</summary>
    public void VisitPacked<TVisitor>(ulong start, ulong last, ref TVisitor visitor)
        where TVisitor : struct, IPackedRunVisitor<T>, allows ref struct
    {
        if (start > last || !FindAtOrAfter(start, out Leaf? leaf, out int i))
        {
            return;
        }
        int version = _version;
        while (true)
        {
            int count = leaf.Count;
            if (PackedForm && leaf.Packed is { } packed)
            {
                ulong unit = packed[1];
                ulong runStart = packed[0] + ((ulong)i * unit);
                if (i < count && runStart < start)
                {
                    // The range starts inside this run.
                    ulong runLast = runStart + (unit - 1);
                    T value = T.Unpack(packed[i + Leaf.Header]).Advance(start - runStart);
                    if (!visitor.Visit(start, Math.Min(runLast, last), value) || runLast >= last)
                    {
                        return;
                    }
                    i++;
                    runStart += unit;
                }
                if (i < count)
                {
                    if (runStart > last)
                    {
                        return;
                    }
                    // The runs from i starting at or before last; all whole but maybe the last of them.
                    ulong beyond = (last - runStart) / unit; // how many runs past the first start at or before last
                    int starting = beyond >= (ulong)(count - i - 1) ? count - i : (int)beyond + 1;
                    ulong endLast = runStart + ((ulong)(starting - 1) * unit) + (unit - 1);
                    int whole = endLast > last ? starting - 1 : starting;
                    if (whole > 0 && !visitor.VisitPacked(runStart, unit, packed.AsSpan(i + Leaf.Header, whole)))
                    {
                        return;
                    }
                    if (whole < starting)
                    {
                        // The range ends inside this run.
                        ulong cutStart = runStart + ((ulong)whole * unit);
                        visitor.Visit(cutStart, last, T.Unpack(packed[i + whole + Leaf.Header]));
                        return;
                    }
                    if (endLast >= last)
                    {
                        return;
                    }
                }
            }
            else if (!VisitSparseLeaf(leaf, i, start, last, ref visitor))
            {
                return;
            }
            System.Diagnostics.Debug.Assert(version == _version, "the map changed during VisitPacked");
            if (leaf.Next is not { } next)
            {
                return;
            }
            leaf = next;
            i = 0;
        }
    }

    // A sparse leaf's runs from i, clipped to [start, last], handed to the visitor (Visit and VisitPacked read sparse
    // leaves alike): false once the range or the visitor is done, true to go on to the next leaf.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool VisitSparseLeaf<TVisitor>(Leaf leaf, int i, ulong start, ulong last, ref TVisitor visitor)
        where TVisitor : struct, IRunVisitor<T>, allows ref struct
    {
        int count = leaf.Count;
        for (; i < count; i++)
        {
            ulong runStart = leaf.Keys[i];
            if (runStart > last)
            {
                return false;
            }
            ulong runLast = leaf.Lasts[i];
            ulong s = Math.Max(runStart, start);
            T value = leaf.Values[i];
            if (!visitor.Visit(s, Math.Min(runLast, last), s == runStart ? value : value.Advance(s - runStart)) || runLast >= last)
            {
                return false;
            }
        }
        return true;
    }
}
