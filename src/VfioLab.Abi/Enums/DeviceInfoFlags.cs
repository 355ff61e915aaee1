namespace VfioLab.Abi;

/// <summary>Flags of <see cref="VfioDeviceInfo"/> (<c>VFIO_DEVICE_FLAGS_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
[Flags]
public enum DeviceInfoFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>RESET: the device supports VFIO_DEVICE_RESET.</summary>
    Reset = 1,
    /// <summary>PCI: a vfio-pci device.</summary>
    Pci = 2,
    /// <summary>PLATFORM: a vfio-platform device.</summary>
    Platform = 4,
    /// <summary>AMBA: a vfio-amba device.</summary>
    Amba = 8,
    /// <summary>CCW: a vfio-ccw device.</summary>
    Ccw = 0x10,
    /// <summary>AP: a vfio-ap device.</summary>
    Ap = 0x20,
    /// <summary>FSL_MC: a vfio-fsl-mc device.</summary>
    FslMc = 0x40,
    /// <summary>CAPS: the info supports a capability chain.</summary>
    Caps = 0x80,
}
