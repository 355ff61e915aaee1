using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>
/// A VFIO group (<c>/dev/vfio/N</c>) seen from user space: the unit of ownership that joins a container and hands
/// out device fds.
/// </summary>
public sealed class Group : VfioFile
{
    private Group(ISyscallSurface sys, int number, int fd)
        : base(sys, fd)
    {
        Number = number;
    }

    /// <summary>The IOMMU group number.</summary>
    public int Number { get; }

    /// <summary>Opens <c>/dev/vfio/<paramref name="number"/></c>.</summary>
    /// <exception cref="VfioException">ENOENT (no such group), EBUSY (already open in another process).</exception>
    public static Group Open(ISyscallSurface sys, int number)
    {
        ArgumentNullException.ThrowIfNull(sys);
        string path = $"/dev/vfio/{number}";
        int fd = (int)Syscall.Check(sys.Open(path), () => $"open {path}");
        return new Group(sys, number, fd);
    }

    /// <summary><c>VFIO_GROUP_GET_STATUS</c>.</summary>
    public (bool Viable, bool ContainerSet) GetStatus()
    {
        byte[] arg = AbiStruct.ToArray(new VfioGroupStatus { Argsz = VfioGroupStatus.SizeOf });
        Syscall.Ioctl(Sys, Fd, VfioIoctl.GroupGetStatus, arg, () => $"group_get_status group {Number} fd {Fd}");
        VfioGroupStatus.TryRead(arg, out VfioGroupStatus status);
        return ((status.Flags & GroupStatusFlags.Viable) != 0, (status.Flags & GroupStatusFlags.ContainerSet) != 0);
    }

    /// <summary><c>VFIO_GROUP_SET_CONTAINER</c>: joins <paramref name="container"/> (after checking the group is viable,
    /// as every client should: a group with a device bound to a host driver cannot be used).</summary>
    /// <exception cref="VfioException">The group is not viable, or the kernel refused (EBUSY, EPERM, EINVAL, ...).</exception>
    public void SetContainer(Container container)
    {
        ArgumentNullException.ThrowIfNull(container);
        if (!GetStatus().Viable)
        {
            throw new VfioException($"group_set_container group {Number} fd {Fd}", Errno.None,
                "the group is not viable: every device in it must be bound to a VFIO driver or to none");
        }
        byte[] arg = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(arg, container.Fd);
        Syscall.Ioctl(Sys, Fd, VfioIoctl.GroupSetContainer, arg,
            () => $"group_set_container group {Number} fd {Fd} container {container.Fd}");
    }

    /// <summary><c>VFIO_GROUP_UNSET_CONTAINER</c>.</summary>
    public void UnsetContainer() =>
        Syscall.Ioctl(Sys, Fd, VfioIoctl.GroupUnsetContainer, 0, () => $"group_unset_container group {Number} fd {Fd}");

    /// <summary><c>VFIO_GROUP_GET_DEVICE_FD</c>: opens the device named <paramref name="name"/> (a PCI address such as
    /// <c>0000:01:00.0</c>, or an mdev's UUID).</summary>
    public Device OpenDevice(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        byte[] arg = new byte[Encoding.UTF8.GetByteCount(name) + 1];
        Encoding.UTF8.GetBytes(name, arg);
        int fd = (int)Syscall.Ioctl(Sys, Fd, VfioIoctl.GroupGetDeviceFd, arg, () => $"get_device_fd group {Number} name {name}");
        return new Device(Sys, name, fd);
    }
}
