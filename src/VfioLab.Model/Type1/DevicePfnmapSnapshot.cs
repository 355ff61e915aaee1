using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>One device whose memory a type1 container maps in the seeds profile (the RFC's pfnmap_obj), as
/// copied into a <see cref="VfioIommuSnapshot"/>.</summary>
/// <param name="Device">The device.</param>
/// <param name="MappingIovas">First IOVA of each mapping that reaches the device's memory.</param>
/// <param name="Releasing">The release notifier ran; its unregistration waits for deferred work.</param>
/// <param name="NotifierRegistered">Whether the notifier is on the device's chain.</param>
/// <param name="DeviceReferences">The device's reference count (all holders).</param>
internal sealed record DevicePfnmapSnapshot(VfioDevice Device, IReadOnlyList<ulong> MappingIovas, bool Releasing, bool NotifierRegistered,
    int DeviceReferences);
