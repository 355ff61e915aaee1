namespace VfioLab.Vfio;

/// <summary>
/// A device driver that pins guest pages through the IOMMU backend (a mediated device's vendor driver):
/// it implements <c>ops-&gt;dma_unmap</c> (drivers/vfio/vfio_main.c, v6.0+; before v6.0 the
/// <c>VFIO_IOMMU_NOTIFY_DMA_UNMAP</c> notifier), which the backend calls before it removes a mapping the
/// device still pins. The driver MUST unpin every page it pinned in the range (re-entering
/// <see cref="VfioDevice.UnpinPages(ulong, int, int)"/>); the backend calls it with its own lock released and re-checks.
/// </summary>
internal interface IVfioPinningDriver : IVfioDeviceDriver
{
    /// <summary>ops-&gt;dma_unmap: the user is removing the mapping <c>[iova, iova + size)</c>; called with
    /// no backend lock held.</summary>
    void DmaUnmap(VfioDevice device, ulong iova, ulong size);
}
