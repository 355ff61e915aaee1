namespace VfioLab.Lab;

/// <summary>
/// A device whose memory (a BAR mmapped by the process) a type1 container maps and so holds a reference to: the
/// seeds profile's design for PFNMAP, under which the device's release removes those mappings and queues the
/// unregistration of its notifier as deferred work. Upstream keeps no such hold (the list is empty there).
/// </summary>
/// <param name="Device">The device's address (<see cref="LabDevice.Address"/>).</param>
/// <param name="MappingIovas">The first IOVA of each mapping that reaches the device's memory, in the container's order.</param>
/// <param name="Releasing">The device was released; the container lets it go when deferred work runs
/// (<see cref="LabHost.RunDeferredWork"/>).</param>
public sealed record LabDeviceHold(string Device, IReadOnlyList<ulong> MappingIovas, bool Releasing);
