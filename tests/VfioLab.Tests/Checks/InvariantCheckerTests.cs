using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;
using VfioLab.Vfio;
using VfioLab.Vfio.Pci;

namespace VfioLab.Tests.Checks;

/// <summary>Each invariant the checker evaluates is broken on purpose, through an internal hook,
/// and must be reported by name.</summary>
public sealed class InvariantCheckerTests
{
    private static SimulatedHost NewHost()
    {
        var host = new SimulatedHost(1UL << 30, 12, FrameLayout.Contiguous, IommuHardwareProfile.VtD, KernelSettings.Default);
        Assert.Null(host.AddPciDevice("gpu", PciAddress.Parse("0000:01:00.0"), [new PciBarRequest(0, 1 << 20)], DriverBinding.Vfio, 1));
        host.Seal();
        return host;
    }

    [Fact]
    public void Check_FreshHost_IsClean()
    {
        Assert.Empty(new InvariantChecker(NewHost()).Check());
    }

    [Fact]
    public void Check_ProcessWithStandardStreams_IsCleanWhileAliveAndAfterExit()
    {
        SimulatedHost host = NewHost();
        Process p = host.Spawn("p", ulong.MaxValue, false);
        Assert.Equal([0, 1, 2], p.Fds.Snapshot());
        Assert.Empty(new InvariantChecker(host).Check());

        p.Exit();

        Assert.Equal(0, p.Fds.Count);
        Assert.Empty(new InvariantChecker(host).Check());
    }

    [Fact]
    public void Check_PinWithoutBackend_ReportsPinsBalanced()
    {
        SimulatedHost host = NewHost();
        Assert.True(host.Machine.Memory.TryAllocateRun(1, out PfnRun run));
        host.Machine.Memory.Pin(run.First, 1);

        IReadOnlyList<InvariantViolation> found = new InvariantChecker(host).Check();

        Assert.Contains(found, v => v.Invariant == "pins-balanced");
    }

    [Fact]
    public void Check_BarPteWhileDecodeOff_ReportsNoCpuMappingOfDisabledBar()
    {
        SimulatedHost host = NewHost();
        Process p = host.Spawn("p", ulong.MaxValue, false);
        VfioDevice dev = host.Devices["gpu"].Vfio!;
        var pci = (VfioPciDevice)dev.Hardware!;
        pci.Function.SetMemoryEnable(true);
        // Hook: a device fd installed without GET_DEVICE_FD (no backend exists to open it properly).
        int fd = p.Fds.Install(new OpenFile("[vfio-device-hook]", new VfioDeviceFile(dev)));
        long addr = p.Syscalls.Mmap(0, 1 << 20, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared, fd, 0);
        Assert.True(addr > 0, $"mmap returned {addr}");
        Assert.Equal(0, p.Syscalls.WriteMemory((ulong)addr, [1, 2, 3, 4]));
        Assert.Empty(new InvariantChecker(host).Check());

        // Hook: decode turned off behind vfio-pci's back, so nothing zaps the CPU mapping.
        pci.Function.SetMemoryEnable(false);

        Assert.Contains(new InvariantChecker(host).Check(), v => v.Invariant == "no-cpu-mapping-of-disabled-bar");
    }

    [Fact]
    public void Check_DecodeOffThroughConfigWrite_ZapsAndStaysClean()
    {
        SimulatedHost host = NewHost();
        Process p = host.Spawn("p", ulong.MaxValue, false);
        VfioDevice dev = host.Devices["gpu"].Vfio!;
        var pci = (VfioPciDevice)dev.Hardware!;
        pci.Function.SetMemoryEnable(true);
        int fd = p.Fds.Install(new OpenFile("[vfio-device-hook]", new VfioDeviceFile(dev)));
        long addr = p.Syscalls.Mmap(0, 1 << 20, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared, fd, 0);
        Assert.Equal(0, p.Syscalls.WriteMemory((ulong)addr, [1, 2, 3, 4]));
        ulong cmdOffset = VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + 4;

        Assert.Equal(2, p.Syscalls.Pwrite(fd, new byte[] { 0, 0 }, cmdOffset));

        Assert.Empty(new InvariantChecker(host).Check());
        Assert.Equal(Errno.EIO.AsReturn(), p.Syscalls.ReadMemory((ulong)addr, new byte[4]));
        Assert.Equal(2, p.Syscalls.Pwrite(fd, new byte[] { 2, 0 }, cmdOffset));
        byte[] back = new byte[4];
        Assert.Equal(0, p.Syscalls.ReadMemory((ulong)addr, back));
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, back);
    }

    [Fact]
    public void Check_GroupPointsAtContainerThatDoesNotListIt_ReportsGroupAttachedOnce()
    {
        SimulatedHost host = NewHost();
        ISyscallSurface sys = host.Spawn("p", ulong.MaxValue, false).Syscalls;
        int c = sys.Open("/dev/vfio/vfio");
        int g = sys.Open("/dev/vfio/1");
        Assert.Equal(0, sys.Ioctl(g, VfioIoctl.GroupSetContainer, BitConverter.GetBytes(c)));
        VfioContainer container = host.Vfio.Containers.Single();

        container.ForgetGroupForTest(host.Vfio.FindGroup(1)!);

        Assert.Contains(new InvariantChecker(host).Check(), v => v.Invariant == "group-attached-once");
    }

    [Fact]
    public void Check_BackendStateWithoutGroups_ReportsEmptyContainerClean()
    {
        SimulatedHost host = NewHost();
        VfioContainer container = host.Vfio.CreateContainer();

        container.SetBackendForTest(new NullBackend());

        Assert.Contains(new InvariantChecker(host).Check(), v => v.Invariant == "empty-container-clean");
    }

    private sealed class NullBackend : IVfioIommu
    {
        public long CheckExtension(ulong extension) => 0;

        public long Ioctl(VfioCallContext context, uint request, ref IoctlArgument argument) => Errno.ENOTTY.AsReturn();

        public Errno AttachGroup(VfioGroup group, VfioLab.Host.Process? current) => Errno.None;

        public void DetachGroup(VfioGroup group)
        {
        }

        public void Release()
        {
        }

        public void RegisterDevice(VfioDevice device)
        {
        }

        public void UnregisterDevice(VfioDevice device)
        {
        }
    }
}
