using VfioLab.Addressing;
using VfioLab.Diagnostics;

namespace VfioLab.Type1;

// Read-only access for the invariant checker's narrow check (Checks/InvariantChecker.InPlace.cs, issue 16): it reads
// the mappings and page-table runs a MAP_DMA or UNMAP_DMA changed where they are, under the container's lock, instead
// of copying them into a snapshot. Nothing here changes state; every *Locked member needs CheckLock held.
internal sealed partial class VfioIommu
{
    /// <summary>The container's type1 lock, which the checker holds while it reads the members below.</summary>
    internal OrderedLock CheckLock => _ctx.Lock;

    /// <summary>The DMA tree (read under <see cref="CheckLock"/>).</summary>
    internal DmaTree TreeForCheck => _tree;

    /// <summary>The domains and emulated groups (read under <see cref="CheckLock"/>).</summary>
    internal DomainSet DomainsForCheck => _domains;

    /// <summary>The valid IOVA windows in list order (lock held).</summary>
    internal IReadOnlyList<ByteRange> IovaRangesForCheckLocked => _windows.ListLocked.Ranges;

    /// <summary><c>dirty_page_tracking</c> (lock held).</summary>
    internal bool DirtyTrackingForCheckLocked => _dirty.TrackingLocked;

    /// <summary>Whether an unmap hit the kernel's BUG() (lock held).</summary>
    internal bool HasNotifierBugForCheckLocked => _notifier.BugLocked is not null;

    /// <summary>Whether the container holds device memory or has pinning devices registered (lock held): their state
    /// is checked over every mapping, so the narrow check leaves such a container to the full sweep.</summary>
    internal bool DevicesTakePartForCheckLocked => _holds.AnyLocked || _notifier.DeviceCountLocked > 0;

    /// <summary>The host PAGE_SIZE.</summary>
    internal ulong PageSizeForCheck => _ctx.PageSize;

    /// <summary>The mapping the last MAP_DMA that linked one handed over (<see cref="Type1Context.DeclareLinked"/>; lock
    /// held): a hint the checker verifies against the tree before it uses it.</summary>
    internal VfioDma? LinkedForCheckLocked => _ctx.LinkedForCheckLocked;

    /// <summary>How many MAP_DMA calls of this container linked a mapping (<see cref="Type1Context.LinkedCountForCheck"/>;
    /// no lock).</summary>
    internal int LinkedCountForCheck => _ctx.LinkedCountForCheck;

    /// <summary>The mapping the <paramref name="count"/>-th MAP_DMA that linked one handed over, when no later one has
    /// (taken under the lock: the mapping and the count are one state there); null otherwise.</summary>
    internal VfioDma? LinkedForCheck(int count)
    {
        using (_ctx.Lock.EnterScope())
        {
            return _ctx.LinkedCountForCheck == count ? _ctx.LinkedForCheckLocked : null;
        }
    }

    /// <summary>The lock entry counts the last MAP_DMA that linked a mapping handed over with it
    /// (<see cref="Type1Context.HandOverForCheckLocked"/>; lock held).</summary>
    internal HandOverEntries HandOverForCheckLocked => _ctx.HandOverForCheckLocked;

    /// <summary>The lock entry counts the last MAP_DMA or UNMAP_DMA recorded when it took the lock
    /// (<see cref="Type1Context.StartForCheckLocked"/>; lock held).</summary>
    internal HandOverEntries StartForCheckLocked => _ctx.StartForCheckLocked;

    /// <summary>What the last MAP_DMA that linked a mapping handed over, and the counts the last MAP_DMA or UNMAP_DMA
    /// recorded at its start, read without the lock: for a reader that proves by the lock's entry count
    /// (<see cref="OrderedLock.EntriesForCheck"/>) that nobody took it since (Checks/InvariantChecker.HandOver.cs).</summary>
    internal (VfioDma? Linked, HandOverEntries HandOver, HandOverEntries Start) HandOverUnlockedForCheck =>
        (_ctx.LinkedForCheckLocked, _ctx.HandOverForCheckLocked, _ctx.StartForCheckLocked);

    /// <summary>The lock entry counts now (<see cref="Type1Context.EntriesForCheckLocked"/>; lock held).</summary>
    internal HandOverEntries EntriesForCheckLocked() => _ctx.EntriesForCheckLocked();

    /// <summary><see cref="Snapshot()"/> without mappings and page-table runs (the domains' runs over an empty span): what
    /// the full sweep's group, window and counter checks read when it has checked the mappings in place.</summary>
    internal VfioIommuSnapshot SnapshotWithoutMappingsForCheck()
    {
        using (_ctx.Lock.EnterScope())
        {
            return new VfioIommuSnapshot(_ctx.ContainerId, V2, _ctx.PageSize, [], _domains.SnapshotDomainsLocked(new ByteRange(1, 0)),
                _domains.SnapshotEmulatedLocked(), _windows.ListLocked.Ranges, _tree.DmaAvailLocked, _tree.DmaEntryLimit, _tree.CountLocked,
                _tree.VaddrInvalidCountLocked, _domains.NumNonPinnedGroupsLocked, _dirty.TrackingLocked, _domains.PgsizeBitmapLocked,
                _notifier.DeviceCountLocked)
            {
                NotifierBug = _notifier.BugLocked,
                DevicePfnmaps = _holds.SnapshotLocked(),
            };
        }
    }
}
