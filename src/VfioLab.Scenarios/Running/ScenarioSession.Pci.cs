using System.Buffers.Binary;
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
        else
        {
            long info = HotResetGroupsOf(p, Fd(step), groupFds, out ulong count);
            if (info < 0)
            {
                return Syscall(info);
            }
            devices = count;
        }
        StepResult r = StructIoctl(step, VfioIoctl.DevicePciHotReset, VfioPciHotReset.SizeOf, b =>
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(VfioPciHotReset.Offsets.Count), (uint)groupFds.Count);
            for (int i = 0; i < groupFds.Count; i++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(VfioPciHotReset.Offsets.GroupFds + (4 * i)), groupFds[i]);
            }
        }, null, 4 * groupFds.Count);
        if (devices is { } n)
        {
            r.Set("devices", n);
        }
        return r;
    }

    // GET_PCI_HOT_RESET_INFO (sized by a first call answering ENOSPC), then the caller's fds of the listed groups.
    private static long HotResetGroupsOf(LabProcess p, int deviceFd, List<int> groupFds, out ulong count)
    {
        count = 0;
        byte[] probe = new byte[VfioPciHotResetInfo.SizeOf];
        BinaryPrimitives.WriteUInt32LittleEndian(probe, VfioPciHotResetInfo.SizeOf);
        long ret = p.Syscalls.Ioctl(deviceFd, VfioIoctl.DeviceGetPciHotResetInfo, probe);
        VfioPciHotResetInfo.TryRead(probe, out VfioPciHotResetInfo hdr);
        if (ret < 0 && ErrnoExtensions.FromReturn(ret) != Errno.ENOSPC)
        {
            return ret;
        }
        byte[] full = new byte[VfioPciHotResetInfo.SizeOf + (hdr.Count * VfioPciDependentDevice.SizeOf)];
        BinaryPrimitives.WriteUInt32LittleEndian(full, (uint)full.Length);
        ret = p.Syscalls.Ioctl(deviceFd, VfioIoctl.DeviceGetPciHotResetInfo, full);
        if (ret < 0)
        {
            return ret;
        }
        VfioPciHotResetInfo.TryRead(full, out hdr);
        count = hdr.Count;
        var wanted = new HashSet<uint>();
        for (int i = 0; i < hdr.Count; i++)
        {
            VfioPciDependentDevice.TryRead(full.AsSpan(VfioPciHotResetInfo.Offsets.Devices + (i * VfioPciDependentDevice.SizeOf)), out VfioPciDependentDevice d);
            wanted.Add(d.GroupId);
        }
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
