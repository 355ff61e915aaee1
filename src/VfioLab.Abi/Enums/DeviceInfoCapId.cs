namespace VfioLab.Abi;

/// <summary>Capability ids of a <see cref="VfioDeviceInfo"/> chain (<c>VFIO_DEVICE_INFO_CAP_*</c>; s390 zPCI only).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
public enum DeviceInfoCapId : ushort
{
    /// <summary>ZPCI_BASE.</summary>
    ZpciBase = 1,
    /// <summary>ZPCI_GROUP.</summary>
    ZpciGroup = 2,
    /// <summary>ZPCI_UTIL.</summary>
    ZpciUtil = 3,
    /// <summary>ZPCI_PFIP.</summary>
    ZpciPfip = 4,
}
