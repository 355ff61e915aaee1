using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// The type1 backend as the VFIO core registers it (vfio_iommu_driver_ops_type1): answers
/// CHECK_EXTENSION before SET_IOMMU and opens a <see cref="VfioIommu"/> for VFIO_TYPE1_IOMMU (v1) or
/// VFIO_TYPE1v2_IOMMU (v2).
/// </summary>
/// <remarks>Stateless besides its configuration, which never changes.</remarks>
internal sealed class VfioIommuType1Driver(Machine machine, Type1Behavior behavior) : IVfioIommuDriver
{
    /// <inheritdoc />
    public string Name => "vfio-iommu-type1";

    /// <inheritdoc />
    public bool ServesNoIommu => false;

    /// <summary>Version switches and module parameters every container of this driver uses.</summary>
    public Type1Behavior Behavior { get; } = behavior;

    /// <inheritdoc />
    /// <remarks>Without container state: the type extensions and UNMAP_ALL are 1; UPDATE_VADDR and
    /// DMA_CC_IOMMU are 0; the nesting type is 0 since v6.13 (35890f85573c), 1 before
    /// (<see cref="Type1Behavior.NestingIommuExtension"/>).</remarks>
    public long CheckExtension(ulong extension) => extension switch
    {
        VfioExtension.Type1Iommu or VfioExtension.Type1v2Iommu or VfioExtension.UnmapAll => 1,
        VfioExtension.Type1NestingIommu => Behavior.NestingIommuExtension ? 1 : 0,
        _ => 0,
    };

    /// <inheritdoc />
    /// <returns>EINVAL for any type but TYPE1 and TYPE1v2.</returns>
    public Errno Open(ulong type, VfioContainer container, out IVfioIommu? state)
    {
        state = null;
        if (type != VfioExtension.Type1Iommu && type != VfioExtension.Type1v2Iommu)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_open", "IOMMU type {0} is neither VFIO_TYPE1_IOMMU (1) nor VFIO_TYPE1v2_IOMMU (3)", type);
        }
        state = new VfioIommu(machine, Behavior, v2: type == VfioExtension.Type1v2Iommu, container.Id);
        return Errno.None;
    }
}
