using System.Text;
using System.Text.RegularExpressions;
using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Diagnostics;
using VfioLab.Simulation;
using VfioLab.Tests.Concurrency;
using VfioLab.Tests.DeviceMemory;
using VfioLab.Vfio;
using VfioLab.Vfio.Pci;

namespace VfioLab.Tests.FailNth;

/// <summary>
/// Fail-nth of VFIO_GROUP_GET_DEVICE_FD (vfio_group_ioctl_get_device_fd → vfio_device_open_file): the device
/// file's allocation (<c>device_file_alloc</c>), on the first open the driver's open_device (vfio-pci:
/// <c>pci_enable_device</c>, <c>vfio_config_init</c>; an mdev: <c>mdev_open_device</c>), then the file itself
/// (<c>anon_inode_getfile</c>), whose failure closes the device again. Each failure returns the errno Linux returns
/// at that step and leaves open count, container users, the backend's device list and notifiers, the fd table
/// and the group file's references as before; what Linux's own unwind leaves behind is asserted exactly.
/// </summary>
public sealed partial class DeviceOpenFailNthTests
{
    [GeneratedRegex(@" resets \d+")]
    private static partial Regex ResetCount();

    [GeneratedRegex(@" command 0x[0-9a-f]+")]
    private static partial Regex CommandRegister();

    private static long GetDeviceFd(StressRig rig, int groupFd, string name) =>
        rig.Sys.Ioctl(groupFd, VfioIoctl.GroupGetDeviceFd, [.. Encoding.UTF8.GetBytes(name), 0]);

    // The GPU closed again (its fd closed and its BAR munmapped, so its last reference goes): the next
    // GET_DEVICE_FD is a first open of a device vfio-pci enabled before.
    private static StressRig GpuClosed(KernelSettings? kernel = null)
    {
        var rig = new StressRig(kernel);
        Assert.Equal(0, rig.Sys.Close(rig.GpuFd));
        Assert.Equal(0, rig.Sys.Munmap(rig.BarVaddr, StressRig.BarMapSize));
        Assert.Equal(0, rig.Host.Devices["gpu"].Vfio!.OpenCount);
        return rig;
    }

    // Every reference a failure might have leaked on the group file shows once the group fd closes: the group
    // is released (and leaves its container) only when its last reference goes.
    private static void AssertGroupReleasesAfterClosing(StressRig rig, int deviceFd, int groupFd, VfioGroup group)
    {
        Assert.Equal(0, rig.Sys.Close(deviceFd));
        Assert.Equal(0, rig.Sys.Close(groupFd));
        Assert.Equal((false, 0), (group.OpenedFile is not null, group.ContainerUsers));
    }

    [Theory]
    [InlineData(KernelSettings.Seeds)]
    [InlineData(KernelSettings.Linux618)]
    public void GetDeviceFd_PciFirstOpenNthStepFails_ReturnsInjectedErrnoAndRollsBack(string profile)
    {
        // vfio-pci's close_device resets the function it had just enabled (vfio_pci_core_disable), in the model
        // as in Linux: the reset count is the one field the anon_inode_getfile unwind may change.
        StressRig rig = GpuClosed(new KernelSettings(profile, []));
        VfioDevice gpu = rig.Host.Devices["gpu"].Vfio!;
        long fd = -1;

        int points = FailNthSweep.Run(rig.Host, () => fd = GetDeviceFd(rig, rig.GpuGroupFd, StressRig.Gpu), [Errno.ENOMEM, Errno.EINVAL],
            linuxKeeps: line => ResetCount().Replace(line, string.Empty));

        Assert.Equal(4, points);   // device_file_alloc, pci_enable_device, vfio_config_init, anon_inode_getfile
        Assert.True(fd >= 0);
        Assert.Equal((1, 2), (gpu.OpenCount, gpu.Group.ContainerUsers));
        AssertGroupReleasesAfterClosing(rig, (int)fd, rig.GpuGroupFd, gpu.Group);
    }

    [Fact]
    public void GetDeviceFd_ForceReleasedPciFirstOpenNthStepFails_KeepsTheOldMappingRevoked()
    {
        // After a forced release the BAR mmap stays, revoked (SIGBUS). An open that fails after open_device cleared
        // the revocation closes the device again: the mapping that outlived it is revoked again, so a CPU write to
        // it still faults instead of reaching a device nobody has open.
        var rig = new StressRig();
        SimulatedHostActions.ReleaseDevice(rig.Host, rig.Host.Devices["gpu"]);
        VfioPciDevice pci = VfioPciDriver.State(rig.Host.Devices["gpu"].Vfio!);
        Assert.True(pci.Revoked);

        int points = FailNthSweep.Run(rig.Host, () =>
        {
            long ret = GetDeviceFd(rig, rig.GpuGroupFd, StressRig.Gpu);
            if (ret < 0)
            {
                Assert.True(rig.Sys.WriteMemory(rig.BarVaddr, [1]) < 0);
            }
            return ret;
        }, [Errno.ENOMEM, Errno.EINVAL], linuxKeeps: line => ResetCount().Replace(line, string.Empty));

        Assert.Equal(4, points);
        Assert.False(pci.Revoked);
    }

    [Fact]
    public void GetDeviceFd_PciSecondOpenNthStepFails_ReturnsENOMEMAndLeavesTheFirstOpenAlone()
    {
        // A second open skips open_device: only the device file and the file can fail, and nothing is reset.
        var rig = new StressRig();
        VfioDevice gpu = rig.Host.Devices["gpu"].Vfio!;
        long fd = -1;

        int points = FailNthSweep.Run(rig.Host, () => fd = GetDeviceFd(rig, rig.GpuGroupFd, StressRig.Gpu), [Errno.ENOMEM]);

        Assert.Equal(2, points);   // device_file_alloc, anon_inode_getfile
        Assert.Equal((2, 2), (gpu.OpenCount, gpu.Group.ContainerUsers));
        Assert.Equal(0, rig.Host.Devices["gpu"].Function!.ResetCount);
        Assert.Equal(0, rig.Sys.Close((int)fd));
        Assert.Equal(1, gpu.OpenCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GetDeviceFd_MdevFirstOpenNthStepFails_ReturnsENOMEMAndUnregistersTheDevice(bool notifierChain)
    {
        // The core registers the mdev with type1 for unmap callbacks before open_device (v6.0+); before v6.0 the
        // vendor driver registers its own notifier in open_device. Either registration is gone after a failure.
        var rig = new StressRig(notifierChain ? new KernelSettings(KernelSettings.Seeds, [KernelSettings.QuirkIommuNotifierChain]) : null);
        Assert.Equal(0, rig.Sys.Close(rig.MdevFd));
        int registered = rig.Backend.Snapshot().RegisteredDevices;
        long fd = -1;

        int points = FailNthSweep.Run(rig.Host, () => fd = GetDeviceFd(rig, rig.MdevGroupFd, StressRig.MdevUuid.ToString()), [Errno.ENOMEM]);

        Assert.Equal(3, points);   // device_file_alloc, mdev_open_device, anon_inode_getfile
        Assert.Equal((1, registered + 1), (rig.Mdev.OpenCount, rig.Backend.Snapshot().RegisteredDevices));
        AssertGroupReleasesAfterClosing(rig, (int)fd, rig.MdevGroupFd, rig.Mdev.Group);
        Assert.Equal(registered, rig.Backend.Snapshot().RegisteredDevices);
    }

    [Fact]
    public void GetDeviceFd_MdevSecondOpenNthStepFails_ReturnsENOMEM()
    {
        var rig = new StressRig();

        int points = FailNthSweep.Run(rig.Host, () => GetDeviceFd(rig, rig.MdevGroupFd, StressRig.MdevUuid.ToString()), [Errno.ENOMEM]);

        Assert.Equal(2, points);
        Assert.Equal(2, rig.Mdev.OpenCount);
    }

    [Theory]
    [InlineData("device_file_alloc", Errno.ENOMEM)]
    [InlineData("pci_enable_device", Errno.EINVAL)]
    [InlineData("vfio_config_init", Errno.ENOMEM)]
    [InlineData("anon_inode_getfile", Errno.ENOMEM)]
    public void GetDeviceFd_PciFirstOpenSiteFails_ReturnsItsLinuxErrnoAndLeavesTheDeviceClosed(string site, Errno expected)
    {
        StressRig rig = GpuClosed();
        VfioDevice gpu = rig.Host.Devices["gpu"].Vfio!;
        int fds = rig.Process.Fds.Snapshot().Count();
        int resets = rig.Host.Devices["gpu"].Function!.ResetCount;
        rig.Host.Faults.Arm(1, FaultSite.Named(site));

        long ret = GetDeviceFd(rig, rig.GpuGroupFd, StressRig.Gpu);

        Assert.True(rig.Host.Faults.Fired);
        rig.Host.Faults.Arm(0);
        Assert.Equal(expected.AsReturn(), ret);
        Assert.Equal((0, 1, fds), (gpu.OpenCount, gpu.Group.ContainerUsers, rig.Process.Fds.Snapshot().Count()));
        // Only a failure after open_device succeeded runs close_device, whose reset Linux does too.
        Assert.Equal(resets + (site == "anon_inode_getfile" ? 1 : 0), rig.Host.Devices["gpu"].Function!.ResetCount);
    }

    [Fact]
    public void GetDeviceFd_MdevOpenDeviceFails_ReturnsENOMEMAndLeavesTheDeviceClosed()
    {
        var rig = new StressRig();
        Assert.Equal(0, rig.Sys.Close(rig.MdevFd));
        StateDigest before = StateDigest.Of(rig.Host);
        rig.Host.Faults.Arm(1, FaultSite.MdevOpenDevice);

        long ret = GetDeviceFd(rig, rig.MdevGroupFd, StressRig.MdevUuid.ToString());

        rig.Host.Faults.Arm(0);
        Assert.Equal(Errno.ENOMEM.AsReturn(), ret);
        Assert.Equal((0, 1), (rig.Mdev.OpenCount, rig.Mdev.Group.ContainerUsers));
        Assert.Null(StateDigest.Of(rig.Host).FirstDifference(before));
    }

    [Fact]
    public void GetDeviceFd_NeverEnabledFunctionConfigInitFails_ReturnsENOMEMAndLeavesMemoryDecodeOnAsLinux()
    {
        // pci_enable_device turned memory decode on; the unwind's pci_disable_device clears bus mastering only.
        var t = new DeviceMemoryTestHost();
        (_, int[] g) = t.Container(DeviceMemoryTestHost.Gpu2Group);
        VfioLab.Pci.PciFunction function = t.Function(DeviceMemoryTestHost.Gpu2);
        Assert.False(function.MemoryEnabled);
        StateDigest before = StateDigest.Of(t.Host);
        t.Host.Faults.Arm(1, FaultSite.VfioConfigInit);

        long ret = t.Sys.Ioctl(g[0], VfioIoctl.GroupGetDeviceFd, [.. Encoding.UTF8.GetBytes(DeviceMemoryTestHost.Gpu2), 0]);

        t.Host.Faults.Arm(0);
        Assert.Equal(Errno.ENOMEM.AsReturn(), ret);
        Assert.True(function.MemoryEnabled);
        Assert.Equal(0, t.Device("gpu2").Vfio!.OpenCount);
        Assert.Equal([.. before.Lines.Select(l => CommandRegister().Replace(l, string.Empty))],
            StateDigest.Of(t.Host).Lines.Select(l => CommandRegister().Replace(l, string.Empty)));
    }

    [Fact]
    public void GetDeviceFd_NeverEnabledFunctionPciEnableFails_ReturnsEINVALAndLeavesDecodeOff()
    {
        // pci_enable_resources refuses before it writes the command register.
        var t = new DeviceMemoryTestHost();
        (_, int[] g) = t.Container(DeviceMemoryTestHost.Gpu2Group);
        StateDigest before = StateDigest.Of(t.Host);
        t.Host.Faults.Arm(1, FaultSite.PciEnableDevice);

        long ret = t.Sys.Ioctl(g[0], VfioIoctl.GroupGetDeviceFd, [.. Encoding.UTF8.GetBytes(DeviceMemoryTestHost.Gpu2), 0]);

        t.Host.Faults.Arm(0);
        Assert.Equal(Errno.EINVAL.AsReturn(), ret);
        Assert.False(t.Function(DeviceMemoryTestHost.Gpu2).MemoryEnabled);
        Assert.Null(StateDigest.Of(t.Host).FirstDifference(before));
    }

    [Fact]
    public void GetDeviceFd_PciEnableFailsAfterUserSetBusMaster_ReturnsEINVALWithBusMasterCleared()
    {
        // Bus mastering on when the device is opened (left by firmware or a previous owner): vfio_pci_core_enable
        // clears it before pci_enable_device, so even the failed open leaves it cleared, as in Linux.
        StressRig rig = GpuClosed();
        VfioLab.Pci.PciFunction function = rig.Host.Devices["gpu"].Function!;
        function.WriteCommand(function.Command | VfioLab.Pci.PciCommand.Master);
        rig.Host.Faults.Arm(1, FaultSite.PciEnableDevice);

        long ret = GetDeviceFd(rig, rig.GpuGroupFd, StressRig.Gpu);

        rig.Host.Faults.Arm(0);
        Assert.Equal(Errno.EINVAL.AsReturn(), ret);
        Assert.Equal((false, true), (function.BusMasterEnabled, function.MemoryEnabled));
    }

    [Fact]
    public void CloseDevice_UserSetBusMaster_ClearsIt()
    {
        var rig = new StressRig();
        VfioLab.Pci.PciFunction function = rig.Host.Devices["gpu"].Function!;
        ulong offset = VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + VfioLab.Pci.PciFunction.CommandOffset;
        byte[] command = BitConverter.GetBytes((ushort)(function.Command | VfioLab.Pci.PciCommand.Master));
        Assert.Equal(2, rig.Sys.Pwrite(rig.GpuFd, command, offset));
        Assert.True(function.BusMasterEnabled);

        Assert.Equal(0, rig.Sys.Close(rig.GpuFd));
        Assert.Equal(0, rig.Sys.Munmap(rig.BarVaddr, StressRig.BarMapSize));

        Assert.Equal((false, true), (function.BusMasterEnabled, function.MemoryEnabled));
    }

    [Fact]
    public void OpenContainer_AllocFails_ReturnsENOMEMAndCreatesNoContainer()
    {
        // vfio_fops_open's kzalloc of the container is the open's one fallible step.
        var rig = new StressRig();
        int containers = rig.Host.Vfio.Containers.Count;
        long fd = -1;

        int points = FailNthSweep.Run(rig.Host, () => fd = rig.Sys.Open("/dev/vfio/vfio"), [Errno.ENOMEM]);

        Assert.Equal(1, points);
        Assert.Equal(containers + 1, rig.Host.Vfio.Containers.Count);
        Assert.Equal(0, rig.Sys.Close((int)fd));
        rig.Host.Faults.Arm(1, FaultSite.ContainerAlloc);
        Assert.Equal(Errno.ENOMEM.AsReturn(), rig.Sys.Open("/dev/vfio/vfio"));
        rig.Host.Faults.Arm(0);
        Assert.Equal(containers, rig.Host.Vfio.Containers.Count);
    }
}
