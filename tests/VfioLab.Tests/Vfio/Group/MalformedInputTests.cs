using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Group;

/// <summary>Every rejected container, group or device ioctl returns its errno and leaves the whole
/// VFIO state exactly as it was: group flags, container membership and backend, container users,
/// device open counts, DMA owners, the backend's counters and the fd table.</summary>
public sealed class MalformedInputTests
{
    private sealed record Fds(int Container, int Gpu, int Nic, int NonViable, int Device);

    private static readonly Dictionary<string, Func<VfioTestHost, Fds, long>> Cases = new()
    {
        ["status argsz 7"] = (t, f) => t.Sys.Ioctl(f.Gpu, VfioIoctl.GroupGetStatus, Status(7)),
        ["status short buffer"] = (t, f) => t.Sys.Ioctl(f.Nic, VfioIoctl.GroupGetStatus, new byte[6]),
        ["status unmapped pointer"] = (t, f) => t.Sys.Ioctl(f.Nic, VfioIoctl.GroupGetStatus, 0x10UL),
        ["set container bad fd"] = (t, f) => t.SetContainer(f.Nic, 99),
        ["set container group fd"] = (t, f) => t.SetContainer(f.Nic, f.Gpu),
        ["set container device fd"] = (t, f) => t.SetContainer(f.Nic, f.Device),
        ["set container unmapped pointer"] = (t, f) => t.Sys.Ioctl(f.Nic, VfioIoctl.GroupSetContainer, 0x10UL),
        ["set container already set"] = (t, f) => t.SetContainer(f.Gpu, f.Container),
        ["set container not viable"] = (t, f) => t.SetContainer(f.NonViable, f.Container),
        ["unset container none"] = (t, f) => t.UnsetContainer(f.Nic),
        ["unset container busy"] = (t, f) => t.UnsetContainer(f.Gpu),
        ["device fd no NUL"] = (t, f) => t.Sys.Ioctl(f.Gpu, VfioIoctl.GroupGetDeviceFd, Encoding.ASCII.GetBytes(VfioTestHost.GpuName)),
        ["device fd unknown name"] = (t, f) => t.GetDeviceFd(f.Gpu, VfioTestHost.NicName),
        ["device fd no container"] = (t, f) => t.GetDeviceFd(f.Nic, VfioTestHost.NicName),
        ["set iommu already set"] = (t, f) => t.SetIommu(f.Container, VfioExtension.Type1Iommu),
        ["container unknown ioctl"] = (t, f) => t.Sys.Ioctl(f.Container, 0x3B99, new byte[16]),
        ["group unknown ioctl"] = (t, f) => t.Sys.Ioctl(f.Gpu, 0x3B99, new byte[16]),
        ["device unknown ioctl"] = (t, f) => t.Sys.Ioctl(f.Device, 0x5401, 0),
        ["device info argsz 15"] = (t, f) => t.Sys.Ioctl(f.Device, VfioIoctl.DeviceGetInfo, Argsz(15, VfioDeviceInfo.SizeOf)),
        ["region info index 9"] = (t, f) => t.Sys.Ioctl(f.Device, VfioIoctl.DeviceGetRegionInfo, Region(9)),
        ["region info VGA"] = (t, f) => t.Sys.Ioctl(f.Device, VfioIoctl.DeviceGetRegionInfo, Region((uint)VfioPciRegionIndex.Vga)),
        ["ioctl bad fd"] = (t, f) => t.Sys.Ioctl(99, VfioIoctl.GroupUnsetContainer, 0),
        ["close bad fd"] = (t, f) => t.Sys.Close(99),
    };

    public static TheoryData<string, Errno> Inputs => new()
    {
        { "status argsz 7", Errno.EINVAL },
        { "status short buffer", Errno.EFAULT },
        { "status unmapped pointer", Errno.EFAULT },
        { "set container bad fd", Errno.EBADF },
        { "set container group fd", Errno.EBADFD },
        { "set container device fd", Errno.EBADFD },
        { "set container unmapped pointer", Errno.EFAULT },
        { "set container already set", Errno.EINVAL },
        { "set container not viable", Errno.EPERM },
        { "unset container none", Errno.EINVAL },
        { "unset container busy", Errno.EBUSY },
        { "device fd no NUL", Errno.EFAULT },
        { "device fd unknown name", Errno.ENODEV },
        { "device fd no container", Errno.EINVAL },
        { "set iommu already set", Errno.EINVAL },
        { "container unknown ioctl", Errno.ENOTTY },
        { "group unknown ioctl", Errno.ENOTTY },
        { "device unknown ioctl", Errno.ENOTTY },
        { "device info argsz 15", Errno.EINVAL },
        { "region info index 9", Errno.EINVAL },
        { "region info VGA", Errno.EINVAL },
        { "ioctl bad fd", Errno.EBADF },
        { "close bad fd", Errno.EBADF },
    };

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Ioctl_MalformedInput_ReturnsErrnoAndChangesNothing(string name, Errno expected)
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver fake);
        (int c, int gpu, int device) = t.OpenGpu();
        var fds = new Fds(c, gpu, t.OpenGroup(VfioTestHost.NicGroup), t.OpenGroup(VfioTestHost.NonViableGroup), device);
        string before = Snapshot(t, fake, c);

        Assert.Equal(-(long)expected, Cases[name](t, fds));

        Assert.Equal(before, Snapshot(t, fake, c));
    }

    private static string Snapshot(VfioTestHost t, FakeIommuDriver fake, int containerFd)
    {
        var s = new StringBuilder();
        foreach (VfioGroup g in t.Host.Vfio.Groups)
        {
            g.GetStatus(out GroupStatusFlags flags);
            s.Append($"group {g.Number}: {flags} users {g.ContainerUsers} open {g.OpenedFile is not null} " +
                $"container {g.Container?.Id} owner {t.IommuGroup(g.Number).DmaOwner is not null};");
            foreach (VfioDevice d in g.Devices)
            {
                s.Append($" {d.Name} open {d.OpenCount};");
            }
        }
        VfioContainer container = t.ContainerOf(containerFd);
        s.Append($" container groups [{string.Join(",", container.Groups.Select(g => g.Number))}] driver {container.Driver?.Name} state {container.Iommu is not null};");
        s.Append($" backend opens {fake.OpenCalls} attaches {fake.AttachCalls} live {fake.LiveStates}");
        foreach (FakeIommu st in fake.States)
        {
            s.Append($" [attached {st.Attached.Count} detached {st.DetachCount} released {st.ReleaseCount} registered {st.Registered.Count}]");
        }
        s.Append($"; fds {t.FdCount}; containers {t.Host.Vfio.Containers.Count}");
        return s.ToString();
    }

    private static byte[] Status(uint argsz) => Argsz(argsz, VfioGroupStatus.SizeOf);

    private static byte[] Argsz(uint argsz, int length)
    {
        byte[] b = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(b, argsz);
        return b;
    }

    private static byte[] Region(uint index)
    {
        byte[] b = Argsz(VfioRegionInfo.SizeOf, VfioRegionInfo.SizeOf);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(VfioRegionInfo.Offsets.Index), index);
        return b;
    }
}
