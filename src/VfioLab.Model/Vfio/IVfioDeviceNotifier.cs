namespace VfioLab.Vfio;

/// <summary>A listener on a device's notifier chain (the 2021 device-memory design, seed 003): the
/// IOMMU backend registers one for each device whose memory it maps, and is told when the device
/// goes away so it can drop every DMA mapping of that memory.</summary>
internal interface IVfioDeviceNotifier
{
    /// <summary>Called with no VFIO lock held; may unregister itself.</summary>
    void Notify(VfioDevice device, VfioDeviceEvent deviceEvent);
}
