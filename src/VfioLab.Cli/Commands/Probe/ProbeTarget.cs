using VfioLab.Abi;

namespace VfioLab.Cli.Commands.Probe;

/// <summary>What <see cref="HostProbe"/> looks at: a system-call surface, the IOMMU groups that have a
/// <c>/dev/vfio/N</c> node, and the devices of each group (from sysfs on a real host, from the model's host otherwise).</summary>
/// <param name="Description">One line naming the surface.</param>
/// <param name="Sys">The surface the client calls go through.</param>
/// <param name="Groups">Group numbers, ascending.</param>
/// <param name="DevicesOf">The device names of a group.</param>
internal sealed record ProbeTarget(string Description, ISyscallSurface Sys, IReadOnlyList<int> Groups, Func<int, IReadOnlyList<string>> DevicesOf);
