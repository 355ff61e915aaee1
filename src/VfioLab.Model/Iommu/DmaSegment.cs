using VfioLab.Addressing;
using VfioLab.Pci;

namespace VfioLab.Iommu;

/// <summary>Where a translated piece of a device access lands.</summary>
internal enum DmaTargetKind
{
    /// <summary>System memory (or at least not a BAR: the host layer decides whether a frame backs it).</summary>
    Ram,

    /// <summary>Another function's BAR: a peer-to-peer transaction, completed only while that function decodes memory.</summary>
    PeerToPeer,
}

/// <summary>
/// One physically contiguous piece of a translated device access: IOVA, physical address, size, and
/// for peer-to-peer the target function, BAR and offset (a TLP after the IOMMU, routed by address).
/// </summary>
internal readonly record struct DmaSegment(Iova Iova, PhysAddr Phys, ulong Size, DmaTargetKind Kind, PciFunction? Peer, int BarIndex, ulong BarOffset)
{
    /// <inheritdoc />
    public override string ToString() => Kind == DmaTargetKind.Ram
        ? $"iova {Iova} -> ram {Phys} size 0x{Size:x}"
        : $"iova {Iova} -> {Peer?.Address} BAR{BarIndex}+0x{BarOffset:x} size 0x{Size:x}";
}

/// <summary>
/// The outcome of one device access through the IOMMU: the translated pieces in IOVA order and, if
/// the walk hit a fault, the fault (the pieces before it were translated; the caller decides whether
/// the partial transfer happened, as split TLPs before a faulting one do on real hardware).
/// </summary>
internal sealed record DmaAccessResult(IReadOnlyList<DmaSegment> Segments, IommuFault? Fault)
{
    /// <summary>Whether the whole access translated.</summary>
    public bool Ok => Fault is null;
}
