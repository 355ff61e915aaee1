using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>What <c>VFIO_DEVICE_GET_INFO</c> answered.</summary>
public sealed record DeviceInfo(DeviceInfoFlags Flags, uint NumRegions, uint NumIrqs);
