using VfioLab.Iommu;

namespace VfioLab.Simulation;

/// <summary>
/// What one device DMA did: how many bytes moved before anything stopped it, the fault that stopped
/// it (an IOMMU fault or an unsupported request, with the device, the IOVA and the reason), and for a
/// read the bytes that arrived, in IOVA order.
/// </summary>
internal sealed record DeviceDmaResult(ulong Bytes, IommuFault? Fault, byte[] Data)
{
    /// <summary>Whether the whole transfer completed.</summary>
    public bool Ok => Fault is null;
}
