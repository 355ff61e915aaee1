namespace VfioLab.Vfio;

/// <summary>The events of the pre-v6.0 IOMMU notifier chain (<c>enum vfio_iommu_notify_type</c> of include/linux/vfio.h)
/// a pinning driver registers for through <see cref="IVfioIommuPinning.RegisterNotifier"/>.</summary>
internal static class VfioIommuNotify
{
    /// <summary>VFIO_IOMMU_NOTIFY_DMA_UNMAP: the chain's only event, a range of IOVA is being unmapped.</summary>
    public const ulong DmaUnmap = 1;
}
