namespace VfioLab.Collections;

// The runs of a range handed to a struct visitor, read straight from the leaves (Visit): what a streamed unmap of an
// IOMMU table reads (issue 16).
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
