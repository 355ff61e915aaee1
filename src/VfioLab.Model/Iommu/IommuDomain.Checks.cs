using VfioLab.Collections;

namespace VfioLab.Iommu;

// Read-only access for the invariant checker's narrow check (Checks/InvariantChecker.InPlace.cs, issue 16): the page
// table's runs copied a chunk at a time into the checker's buffer, so a check allocates nothing.
internal sealed partial class IommuDomain
{
    /// <summary>How many times the page table's lock was taken (<see cref="Diagnostics.OrderedLock.EntriesForCheck"/>):
    /// every writer of the IOPTEs and of the pending invalidations takes it.</summary>
    internal int LockEntriesForCheck => _lock.EntriesForCheck;

    /// <summary><see cref="HasPendingInvalidationsForCheck"/> without the lock, for a reader that proved by
    /// <see cref="LockEntriesForCheck"/> that nobody took it since a point where the state was as it reads it.</summary>
    internal bool HasPendingInvalidationsUnlockedForCheck => _pending.Count > 0;

    /// <summary>Copies the page table's runs overlapping <c>[start, last]</c>, clipped to it, in IOVA order, into
    /// <paramref name="into"/> until it is full; returns how many were copied (continue from the last one's end).</summary>
    internal int CopyRunsForCheck(ulong start, ulong last, Span<MappedRun> into) => CopyRunsForCheck(start, last, into, out _);

    /// <summary><see cref="CopyRunsForCheck(ulong, ulong, Span{MappedRun})"/>, and whether an IOTLB invalidation is
    /// pending (<see cref="HasPendingInvalidationsForCheck"/>), read in the same acquisition of the lock.</summary>
    internal int CopyRunsForCheck(ulong start, ulong last, Span<MappedRun> into, out bool pendingInvalidations)
    {
        // Issue 16: read straight from the leaves (RunMap.Visit) rather than through the enumerator: the check after the
        // 64 GiB scenario's MAP copies its 16.8 M one-page runs, and this copy was a third of that check's CPU
        // (--check-cost huge-16 under perf, 2026-12-07). The same runs, clipped the same way.
        var copy = new CopyVisitor(into);
        if (into.Length > 0)
        {
            using (_lock.EnterScope())
            {
                pendingInvalidations = _pending.Count > 0;
                _table.Visit(start, last, ref copy);
            }
        }
        else
        {
            pendingInvalidations = HasPendingInvalidationsForCheck;
        }
        return copy.Count;
    }

    /// <summary>Hands the page table's runs overlapping <c>[start, last]</c>, clipped to it, in IOVA order, to
    /// <paramref name="visitor"/> (a packed leaf's whole runs at once: RunMap.VisitPacked) until it returns false, under one acquisition of the lock; whether an IOTLB invalidation
    /// is pending is read in the same acquisition.</summary>
    /// <remarks>Issue 16: what <see cref="CopyRunsForCheck(ulong, ulong, Span{MappedRun}, out bool)"/> copies a chunk at a
    /// time, read where it lies by the checker's own visitor instead: the check after the 64 GiB scenario's MAP reads
    /// 16.8 M one-page runs, and copying each into a buffer and reading it back cost a third of that check.</remarks>
    internal void VisitRunsForCheck<TVisitor>(ulong start, ulong last, ref TVisitor visitor, out bool pendingInvalidations)
        where TVisitor : struct, IPackedRunVisitor<IopteRun>, allows ref struct
    {
        using (_lock.EnterScope())
        {
            pendingInvalidations = _pending.Count > 0;
            _table.VisitPacked(start, last, ref visitor);
        }
    }

    // Fills the buffer with the runs visited, stopping when it is full.
    private ref struct CopyVisitor(Span<MappedRun> into) : IRunVisitor<IopteRun>
    {
        private readonly Span<MappedRun> _into = into;

        public int Count { get; private set; }

        public bool Visit(ulong start, ulong last, IopteRun value)
        {
            _into[Count++] = new MappedRun(new Addressing.ByteRange(start, last), value.Phys, value.PageSize, value.Prot);
            return Count < _into.Length;
        }
    }

    /// <summary>Whether any IOTLB invalidation is pending (not flushed yet).</summary>
    internal bool HasPendingInvalidationsForCheck
    {
        get
        {
            using (_lock.EnterScope())
            {
                return _pending.Count > 0;
            }
        }
    }
}
