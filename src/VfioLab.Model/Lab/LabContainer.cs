using VfioLab.Iommu;
using VfioLab.Spapr;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Lab;

/// <summary>
/// Inspection of one VFIO container (<c>struct vfio_container</c>) and the backend set on it: its live mappings,
/// its free DMA slots, the groups attached. A view: each property reads the current state under the backend's lock.
/// </summary>
public sealed class LabContainer
{
    private readonly VfioContainer _container;

    internal LabContainer(VfioContainer container) => _container = container;

    /// <summary>The container's number in this host (creation order).</summary>
    public int Id => _container.Id;

    /// <summary>The backend set by VFIO_SET_IOMMU: <c>type1</c>, <c>spapr-tce</c>, or null while none is set.</summary>
    public string? Backend => _container.Iommu switch
    {
        null => null,
        VfioIommu => "type1",
        TceContainer => "spapr-tce",
        _ => "other",
    };

    /// <summary>The IOMMU groups attached (VFIO_GROUP_SET_CONTAINER), by number.</summary>
    public IReadOnlyList<int> Groups => [.. _container.Groups.Select(g => g.Number)];

    /// <summary>Live DMA mappings (type1) or valid TCEs (sPAPR); 0 while no backend is set.</summary>
    public ulong MappingCount => (_container.Iommu as IVfioIommuInspection)?.MappingCount ?? 0;

    /// <summary>Free DMA slots (<c>dma_avail</c> of VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL); null while no backend is set.</summary>
    public ulong? DmaAvail => (_container.Iommu as IVfioIommuInspection)?.DmaAvail;

    /// <summary>The type1 container's mappings in IOVA order; empty for other backends.</summary>
    public IReadOnlyList<LabMapping> Mappings
    {
        get
        {
            if (_container.Iommu is not VfioIommu type1)
            {
                return [];
            }
            return [.. type1.Snapshot().Mappings.Select(m => new LabMapping(m.Iova, m.Size, m.Vaddr, (m.Prot & IommuProt.Read) != 0,
                (m.Prot & IommuProt.Write) != 0, m.VaddrInvalid, m.Task.Pid, m.LockedVm) { IommuMapped = m.IommuMapped })];
        }
    }

    /// <summary>Mappings whose vaddr was invalidated and awaits a VADDR update (<c>vaddr_invalid_count</c>); 0 for
    /// other backends.</summary>
    public int VaddrInvalidCount => Type1Snapshot()?.VaddrInvalidCount ?? 0;

    /// <summary>The pages device drivers pinned through <c>vfio_pin_pages</c> in the type1 container's mappings, in
    /// IOVA order; empty for other backends.</summary>
    public IReadOnlyList<LabExternalPinRun> ExternalPins => Type1Snapshot() is { } s
        ? [.. s.Mappings.SelectMany(m => m.Vpfns).Select(r => new LabExternalPinRun(r.Iova, r.Pages, r.Pfn.Value, r.RefCount))]
        : [];

    /// <summary>The devices whose memory the type1 container maps and holds (seeds profile), with the mappings that
    /// reach each, including released devices whose deferred unregistration has not run; empty otherwise.</summary>
    public IReadOnlyList<LabDeviceHold> DeviceHolds => Type1Snapshot() is { } s
        ? [.. s.DevicePfnmaps.Select(p => new LabDeviceHold(p.Device.Name, [.. p.MappingIovas], p.Releasing))]
        : [];

    internal VfioContainer Container => _container;

    private VfioIommuSnapshot? Type1Snapshot() => (_container.Iommu as VfioIommu)?.Snapshot();
}
