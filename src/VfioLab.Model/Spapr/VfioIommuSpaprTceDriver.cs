using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

/// <summary>
/// The sPAPR TCE backend as the VFIO core registers it (<c>tce_iommu_driver_ops</c>, "iommu-vfio-powerpc",
/// drivers/vfio/vfio_iommu_spapr_tce.c): answers CHECK_EXTENSION before SET_IOMMU and opens a
/// <see cref="TceContainer"/> for VFIO_SPAPR_TCE_IOMMU (v1) or VFIO_SPAPR_TCE_v2_IOMMU (v2).
/// </summary>
/// <remarks>Holds the per-mm state every container of the host shares (<see cref="Mms"/>); otherwise
/// stateless, and its configuration never changes.</remarks>
internal sealed class VfioIommuSpaprTceDriver(Machine machine, SpaprBehavior behavior) : IVfioIommuDriver
{
    /// <inheritdoc />
    public string Name => "iommu-vfio-powerpc";

    /// <inheritdoc />
    public bool ServesNoIommu => false;

    /// <summary>Version switches.</summary>
    public SpaprBehavior Behavior { get; } = behavior;

    /// <summary>Each mm's pre-registered regions and unreturnable charges.</summary>
    public SpaprMmRegistry Mms { get; } = new();

    /// <summary>Containers opened so far that are not yet released (for checks and reports).</summary>
    public List<TceContainer> Containers
    {
        get { lock (_containers) { return [.. _containers]; } }
    }

    private readonly List<TceContainer> _containers = [];

    /// <inheritdoc />
    /// <remarks>Both sPAPR types answer 1. VFIO_EEH is answered by the EEH code (<c>eeh_enabled()</c>),
    /// which the model does not have: 0, as on a host without EEH.</remarks>
    public long CheckExtension(ulong extension) => extension is VfioExtension.SpaprTceIommu or VfioExtension.SpaprTceV2Iommu ? 1 : 0;

    /// <inheritdoc />
    /// <returns>EINVAL for any type but the two sPAPR types.</returns>
    public Errno Open(ulong type, VfioContainer container, out IVfioIommu? state)
    {
        state = null;
        if (type != VfioExtension.SpaprTceIommu && type != VfioExtension.SpaprTceV2Iommu)
        {
            return Refusals.Refuse(Errno.EINVAL, "tce_iommu_open", "IOMMU type {0} is neither VFIO_SPAPR_TCE_IOMMU (2) nor VFIO_SPAPR_TCE_v2_IOMMU (7)", type);
        }
        var c = new TceContainer(machine, this, v2: type == VfioExtension.SpaprTceV2Iommu, container.Id);
        lock (_containers)
        {
            _containers.Add(c);
        }
        state = c;
        return Errno.None;
    }

    /// <summary>A container's release finished.</summary>
    internal void Forget(TceContainer container)
    {
        lock (_containers)
        {
            _containers.Remove(container);
        }
    }
}
