using VfioLab.Addressing;

namespace VfioLab.Iommu;

/// <summary>
/// Receives the IOPTE runs <see cref="IommuDomain.TryUnmapSyncStreamed"/> takes out of a domain's table, in IOVA order,
/// as they are read: type1's streamed unmap appends the frames each translated to what it unpins after the flush. A
/// struct, so the table's walk calls it without an indirection; it runs under the domain's lock and takes no lock.
/// </summary>
internal interface IUnmappedRunSink
{
    /// <summary>IOVAs <c>[iovaStart, iovaLast]</c> translated to physical memory from <paramref name="phys"/> on,
    /// contiguously.</summary>
    void Take(ulong iovaStart, ulong iovaLast, PhysAddr phys);
}
