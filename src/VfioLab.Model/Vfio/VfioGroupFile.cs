using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;

namespace VfioLab.Vfio;

/// <summary>
/// An open <c>/dev/vfio/N</c> (vfio_group_fops in group.c): status, container membership and device
/// fds. Unknown requests answer ENOTTY, as Linux does on a group fd.
/// </summary>
internal sealed class VfioGroupFile(VfioGroup group) : VfioFileOperations
{
    /// <summary>Linux reads a device name with strndup_user(arg, PAGE_SIZE); the model uses 4 KiB.</summary>
    private const int MaxDeviceName = 4096;

    /// <summary>The group behind the file.</summary>
    public VfioGroup Group { get; } = group;

    /// <inheritdoc />
    public override void Release() => Group.Release();

    protected override long Dispatch(SyscallContext ctx, uint request, ref IoctlArgument arg) => request switch
    {
        VfioIoctl.GroupGetStatus => GetStatus(ref arg),
        VfioIoctl.GroupSetContainer => SetContainer(ctx, ref arg),
        VfioIoctl.GroupUnsetContainer => Group.UnsetContainer().AsReturn(),
        VfioIoctl.GroupGetDeviceFd => GetDeviceFd(ctx, ref arg),
        _ => Refusals.RefuseReturn(Errno.ENOTTY, "vfio_group_fops_unl_ioctl", "request 0x{0:x} is not a group ioctl", request),
    };

    private long GetStatus(ref IoctlArgument arg)
    {
        Span<byte> buf = stackalloc byte[VfioGroupStatus.MinSize];
        if (!arg.TryCopyFrom(0, buf))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_group_ioctl_get_status", "copy_from_user of the {0}-byte struct vfio_group_status faulted", (ulong)buf.Length);
        }
        VfioGroupStatus.TryRead(buf, out VfioGroupStatus status);
        if (status.Argsz < VfioGroupStatus.MinSize)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_group_ioctl_get_status", "argsz {0} is below minsz {1}", status.Argsz, (ulong)VfioGroupStatus.MinSize);
        }
        Errno e = Group.GetStatus(out GroupStatusFlags flags);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        status.Flags = flags;
        status.Write(buf);
        return arg.TryCopyTo(0, buf) ? 0 : Refusals.RefuseReturn(Errno.EFAULT, "vfio_group_ioctl_get_status", "copy_to_user of struct vfio_group_status faulted");
    }

    private long SetContainer(SyscallContext ctx, ref IoctlArgument arg)
    {
        if (!arg.TryGetInt32(out int fd))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_group_ioctl_set_container", "get_user of the container fd faulted");
        }
        if (!ctx.Process.Fds.TryGet(fd, out OpenFile file))
        {
            return Refusals.RefuseReturn(Errno.EBADF, "vfio_group_ioctl_set_container", "fd {0} is not open in process {1}", (ulong)(uint)fd, (ulong)ctx.Process.Pid);
        }
        try
        {
            // The group keeps the container object, not the container's file (vfio_container_get).
            VfioContainer? container = (file.Operations as VfioContainerFile)?.Container;
            return Group.SetContainer(container, ctx.Process).AsReturn();
        }
        finally
        {
            file.Put();
        }
    }

    private long GetDeviceFd(SyscallContext ctx, ref IoctlArgument arg)
    {
        Errno e = arg.TryGetString(MaxDeviceName, out string name);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        e = Group.FindDevice(name, out VfioDevice? device);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        if (!ctx.Process.Fds.HasFreeFd)
        {
            return Refusals.RefuseReturn(Errno.EMFILE, "get_unused_fd_flags", "every fd of process {0} is in use", (ulong)ctx.Process.Pid);
        }
        // vfio_device_open_file: the device file's state (vfio_allocate_device_file, kzalloc), then the open,
        // then the file itself (anon_inode_getfile); a failed file closes the device again, as a last close would.
        if (device!.Faults.ShouldFail(FaultSite.DeviceFileAlloc))
        {
            return Refusals.RefuseReturn(Errno.ENOMEM, "vfio_allocate_device_file", "allocating the device file of {4} failed (injected)", text: device.Name);
        }
        e = device.OpenFile(new OpenFileHandle(ctx.File));
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        if (device.Faults.ShouldFail(FaultSite.AnonInodeGetfile))
        {
            device.CloseFile();
            return Refusals.RefuseReturn(Errno.ENOMEM, "anon_inode_getfile", "creating the file of {4} failed (injected)", text: device.Name);
        }
        var deviceFile = new OpenFile($"[vfio-device:{device.Name}]", new VfioDeviceFile(device));
        int newFd = ctx.Process.Fds.Install(deviceFile);
        ctx.Process.Machine.Trace.Emit(Diagnostics.TraceKind.VfioDeviceOpen, ctx.Process.Pid, Diagnostics.TraceLog.F("device", device.Name), Diagnostics.TraceLog.F("fd", newFd));
        return newFd;
    }
}
