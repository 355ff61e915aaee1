namespace VfioLab.Type1;

/// <summary>
/// The kernel's <c>BUG_ON(++retries &gt; 10)</c> in vfio_dma_do_unmap, recorded instead of crashing: an unmap
/// found the same mapping still externally pinned after notifying the registered devices 11 times. Linux oopses
/// the calling task with the container lock held; the model stops the unmap (EBUSY), keeps the mapping and its
/// pins, and keeps this record until the container's backend is released, so the checker reports it
/// (<c>notifier-retry-limit</c>).
/// </summary>
/// <param name="Iova">First IOVA of the mapping that stayed pinned.</param>
/// <param name="Size">Its size.</param>
/// <param name="Notifications">Notifications sent for it without progress.</param>
/// <param name="Pins">External pins it still had.</param>
internal sealed record NotifierRetryBug(ulong Iova, ulong Size, int Notifications, ulong Pins)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"unmap notified the devices {Notifications} times for mapping [0x{Iova:x}, 0x{Iova + (Size - 1):x}], still externally pinned ({Pins} page(s)): the kernel would BUG()";
}
