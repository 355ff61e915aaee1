namespace VfioLab.Vfio;

/// <summary>Events of a device's notifier chain.</summary>
internal enum VfioDeviceEvent
{
    /// <summary>The last fd closed: the driver released the device (vfio-pci signals it before close_device).</summary>
    Release,
}
