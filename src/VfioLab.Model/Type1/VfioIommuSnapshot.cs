using VfioLab.Addressing;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// One type1 container's state as the invariant checker sees it (struct vfio_iommu between ioctls):
/// taken under the container's lock in one go, so every field agrees with every other. Copies, never
/// live references to mutable lists; cost follows mappings, domain runs and external pins.
/// </summary>
/// <param name="ContainerId">The container's number.</param>
/// <param name="V2">TYPE1v2 semantics.</param>
/// <param name="PageSize">The host PAGE_SIZE.</param>
/// <param name="Mappings">Every mapping found in the DMA tree, by first IOVA.</param>
/// <param name="Domains">The domains, in list order (newest first; the first answers lookups).</param>
/// <param name="EmulatedGroups">The emulated (mdev) groups.</param>
/// <param name="IovaRanges">The valid IOVA windows in list order (empty: no restriction).</param>
/// <param name="DmaAvail"><c>dma_avail</c>.</param>
/// <param name="DmaEntryLimit"><c>dma_entry_limit</c> as read when the container opened.</param>
/// <param name="DmaCount">The backend's own count of mappings.</param>
/// <param name="VaddrInvalidCount"><c>vaddr_invalid_count</c>.</param>
/// <param name="NumNonPinnedGroups"><c>num_non_pinned_groups</c>.</param>
/// <param name="DirtyTracking"><c>dirty_page_tracking</c>.</param>
/// <param name="PgsizeBitmap"><c>pgsize_bitmap</c>.</param>
/// <param name="RegisteredDevices">Pinning-capable devices registered (<c>device_list</c>).</param>
internal sealed record VfioIommuSnapshot(
    int ContainerId,
    bool V2,
    ulong PageSize,
    IReadOnlyList<VfioDmaSnapshot> Mappings,
    IReadOnlyList<VfioDomainSnapshot> Domains,
    IReadOnlyList<Type1GroupSnapshot> EmulatedGroups,
    IReadOnlyList<ByteRange> IovaRanges,
    ulong DmaAvail,
    ulong DmaEntryLimit,
    int DmaCount,
    int VaddrInvalidCount,
    int NumNonPinnedGroups,
    bool DirtyTracking,
    ulong PgsizeBitmap,
    int RegisteredDevices)
{
    /// <summary>The kernel's BUG() in the unmap notification, when an unmap hit it (the model's record).</summary>
    public NotifierRetryBug? NotifierBug { get; init; }

    /// <summary>The devices whose memory the container maps and holds (seeds profile): their references,
    /// notifiers and mappings, including devices released whose deferred unregistration has not run.</summary>
    public IReadOnlyList<DevicePfnmapSnapshot> DevicePfnmaps { get; init; } = [];

    /// <summary>Null for a whole snapshot; for a windowed one (the incremental check), the IOVA window whose mappings
    /// and page-table runs it holds.</summary>
    public ByteRange? Window { get; init; }

    /// <summary>Every group the backend holds: the domains' groups, then the emulated ones.</summary>
    public IEnumerable<Type1GroupSnapshot> AllGroups => Domains.SelectMany(d => d.Groups).Concat(EmulatedGroups);
}
