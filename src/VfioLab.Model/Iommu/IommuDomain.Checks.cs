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
        int n = 0;
        using (_lock.EnterScope())
        {
            pendingInvalidations = _pending.Count > 0;
            foreach (Run<IopteRun> run in _table.Overlapping(start, last))
            {
                if (n == into.Length)
                {
                    break;
                }
                into[n++] = new MappedRun(new Addressing.ByteRange(run.Start, run.Last), run.Value.Phys, run.Value.PageSize, run.Value.Prot);
            }
        }
        return n;
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
