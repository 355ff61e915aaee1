using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>vfio-pci steps beyond the plain device ioctls: the slot hot reset.</summary>
internal sealed partial class ScenarioSession
{
    /// <summary>
    /// <c>pci_hot_reset: { fd, groups: [fd, ...] }</c>: VFIO_DEVICE_PCI_HOT_RESET with the given group fds.
    /// Without <c>groups</c> the step does what QEMU does: VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, then the
    /// process's open fds of the groups it lists (an errno of the info call is the step's result; a group
    /// the process has not opened is left out, so the reset answers EINVAL). Returns <c>result</c>,
    /// <c>bytes</c> and, when the info call ran, <c>devices</c> (functions the reset reaches).
    /// </summary>
    private StepResult PciHotReset(ScenarioStep step)
    {
        LabProcess p = ProcessOf(step);
        List<int> groupFds = [];
        ulong? devices = null;
        if (step.Has("groups"))
        {
            foreach (ScenarioValue v in step.Args.GetValues("groups"))
            {
                ulong fd = Resolve(v);
                if (fd > int.MaxValue)
                {
                    throw new StepFailure(step.Args.GetLocation("groups"), $"group fd 0x{fd:x} is not a file descriptor");
                }
                groupFds.Add((int)fd);
            }
        }
        else if (_real is not null)
        {
            throw new StepFailure(step.Location, "pci_hot_reset on a real kernel needs groups: the fds of the groups to reset");
        }
        else
        {
            long info = HotResetGroupsOf(step, p, Fd(step), groupFds, out ulong count);
            if (info < 0)
            {
                return Syscall(info);
            }
            devices = count;
        }
        StepResult r = StructIoctl(step, VfioIoctl.DevicePciHotReset, VfioPciHotReset.SizeOf, b => VfioPciHotReset.WriteGroupFds(b, [.. groupFds]),
            null, VfioPciHotReset.SizeFor(groupFds.Count) - VfioPciHotReset.SizeOf);
        if (devices is { } n)
        {
            r.Set("devices", n);
        }
        return r;
    }

    // GET_PCI_HOT_RESET_INFO (sized by a first call answering ENOSPC, read by the Abi's codec as the typed client
    // reads it), then the caller's fds of the listed groups, in fd order.
    private static long HotResetGroupsOf(ScenarioStep step, LabProcess p, int deviceFd, List<int> groupFds, out ulong count)
    {
        count = 0;
        byte[] probe = AbiStruct.ToArray(new VfioPciHotResetInfo { Argsz = VfioPciHotResetInfo.SizeOf });
        long ret = p.Syscalls.Ioctl(deviceFd, VfioIoctl.DeviceGetPciHotResetInfo, probe);
        if (ret < 0 && ErrnoExtensions.FromReturn(ret) != Errno.ENOSPC)
        {
            return ret;
        }
        VfioPciHotResetInfo.TryRead(probe, out VfioPciHotResetInfo head);
        if (!VfioPciHotResetInfoReply.TryGetReplySize(head.Count, out int size))
        {
            throw new StepFailure(step.Location, $"GET_PCI_HOT_RESET_INFO answered an implausible device count {head.Count}");
        }
        byte[] full = new byte[size];
        new VfioPciHotResetInfo { Argsz = (uint)size }.Write(full);
        ret = p.Syscalls.Ioctl(deviceFd, VfioIoctl.DeviceGetPciHotResetInfo, full);
        if (ret < 0)
        {
            return ret;
        }
        var reply = VfioPciHotResetInfoReply.Decode(full);
        count = reply.Info.Count;
        var wanted = new HashSet<uint>(reply.Devices.Select(d => d.GroupId));
        foreach ((int fd, int group) in p.GroupFds())
        {
            if (wanted.Remove((uint)group))
            {
                groupFds.Add(fd);
            }
        }
        return 0;
    }
}
