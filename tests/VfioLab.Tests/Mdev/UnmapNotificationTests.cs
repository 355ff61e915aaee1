using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;
using VfioLab.Tests.Type1;
using VfioLab.Type1;
using VfioLab.Vfio;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Tests.Mdev;

/// <summary>
/// The unmap notification (spec §3.8, vfio_dma_do_unmap / vfio_notify_dma_unmap): before a mapping with external
/// pins goes, every registered device is told the whole mapping with the container lock released, must unpin,
/// and the walk starts over with the v2 rules re-checked; the same mapping still pinned after the first
/// notification and ten retries is the kernel's BUG(), which the model records (notifier-retry-limit), answers
/// EBUSY and survives with a consistent state. The pre-v6.0 notifier chain behaves the same.
/// </summary>
public sealed class UnmapNotificationTests
{
    private const ulong MiB = Type1TestHost.MiB;

    public static TheoryData<bool> Protocols => [false, true];

    [Theory]
    [MemberData(nameof(Protocols))]
    public void UnmapDma_PinnedMapping_DeviceUnpinsThenTheMappingGoes(bool notifierChain)
    {
        var m = new MdevTestHost(Host(notifierChain));
        m.Map(0x100000, 1 * MiB);
        m.Map(0x200000, 1 * MiB);
        Assert.Equal(4, m.Pin(0x101000, 4));
        Assert.Equal(2, m.Pin(0x2ff000, 1) + m.Pin(0x2ff000, 1));

        (long ret, ulong size) = m.T.Unmap(m.Container, 0x100000, 2 * MiB);

        Assert.Equal(0, ret);
        Assert.Equal(2 * MiB, size);
        // One notification per pinned mapping, each for the whole mapping.
        Assert.Equal(2, m.Driver.Notifications);
        Assert.Equal(0UL, m.Driver.PinsHeld);
        Assert.Equal(0UL, m.T.TotalPins);
        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Empty(m.Backend.Snapshot().Mappings);
        m.AssertClean();
    }

    [Fact]
    public void UnmapDma_TwoDevicesPinTheSamePage_BothAreToldAndBothUnpin()
    {
        var t = new Type1TestHost(secondMdev: true);
        var m = new MdevTestHost(t, withGpu: true);
        int g2 = t.AddGroup(m.Container, Type1TestHost.Mdev2Group);
        m.OpenDevice(g2, Type1TestHost.Mdev2Uuid);
        VfioDevice dev2 = t.Host.Devices["mdev2"].Vfio!;
        var drv2 = (MdevVendorDriver)dev2.Driver;
        m.Map(0x100000, 1 * MiB);
        Assert.Equal(1, m.Pin(0x100000, 1));
        Assert.Equal(1, drv2.PinPages(dev2, 0x100000, 1, IommuProt.Read, new Addressing.Pfn[1]));
        Assert.Equal(2U, m.Vpfns(0x100000).Single().Value.RefCount);
        // One pin for the IOMMU domain, one for the external pin however many devices count it.
        Assert.Equal(2UL, t.Machine.Memory.PinCount(m.Vpfns(0x100000).Single().Value.Pfn));

        Assert.Equal(0, m.T.Unmap(m.Container, 0x100000, 1 * MiB).Ret);

        Assert.Equal(1, m.Driver.Notifications);
        Assert.Equal(1, drv2.Notifications);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.LockedVmPages);
        m.AssertClean();
    }

    [Fact]
    public void UnmapDma_MappingWithoutPins_NobodyIsTold()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        m.Map(0x200000, 1 * MiB);
        Assert.Equal(1, m.Pin(0x200000, 1));

        Assert.Equal(0, m.T.Unmap(m.Container, 0x100000, 1 * MiB).Ret);

        Assert.Equal(0, m.Driver.Notifications);
        Assert.Single(m.Vpfns(0x200000));
        m.AssertClean();
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public void UnmapDma_DriverIgnoresNotifications_BugAfterElevenIsReportedAndStateStaysConsistent(bool notifierChain)
    {
        var t = Host(notifierChain, misbehaving: true);
        var m = new MdevTestHost(t);
        m.Map(0x100000, 1 * MiB);
        m.Map(0x200000, 1 * MiB);
        Assert.Equal(2, m.Pin(0x200000, 2));

        (long ret, ulong size) = t.Unmap(m.Container, 0x100000, 2 * MiB);

        Assert.Equal(Errno.EBUSY.AsReturn(), ret);
        Assert.Equal(2 * MiB, size); // not written back: the call failed
        Assert.Equal(UnmapNotifier.RetryLimit + 1, m.Driver.Notifications);
        // The unpinned mapping before it went; the pinned one and its pins stay, charged.
        VfioDmaSnapshot left = Assert.Single(m.Backend.Snapshot().Mappings);
        Assert.Equal(0x200000UL, left.Iova);
        Assert.Equal(2, m.Vpfns(0x200000).Count);
        Assert.Equal(2UL, t.LockedVmPages);
        Assert.Equal(2UL, t.TotalPins);
        Assert.Equal(["notifier-retry-limit"], m.Violations());

        // The record stays; closing the device releases its pins; the mapping then goes on the next unmap.
        Assert.Equal(0, t.Sys.Close(m.DeviceFd));
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0, t.Unmap(m.Container, 0x200000, 1 * MiB).Ret);
        Assert.Equal(["notifier-retry-limit"], m.Violations());
        // Releasing the container's backend forgets it.
        Assert.Equal(0, t.UnsetContainer(m.MdevGroupFd));
        Assert.Empty(m.Violations());
    }

    [Fact]
    public void UnmapDma_MappingsChangeWhileUnlocked_BisectionIsCheckedAgain()
    {
        var driver = new RemappingDriver();
        var host = new SimulatedHost(256 * MiB, 12, FrameLayout.Contiguous, IommuHardwareProfile.VtD, KernelSettings.Default);
        host.RegisterType1();
        Assert.Null(host.AddMdevDevice("vgpu", Type1TestHost.MdevUuid, driver, 20));
        host.Seal();
        Process p = host.Spawn("vmm", ulong.MaxValue, capIpcLock: false);
        var sys = p.Syscalls;
        int c = sys.Open("/dev/vfio/vfio");
        int g = sys.Open("/dev/vfio/20");
        Span<byte> arg = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(arg, c);
        Assert.Equal(0, sys.Ioctl(g, VfioIoctl.GroupSetContainer, arg));
        Assert.Equal(0, sys.Ioctl(c, VfioIoctl.SetIommu, VfioExtension.Type1v2Iommu));
        Assert.True(sys.Ioctl(g, VfioIoctl.GroupGetDeviceFd, System.Text.Encoding.ASCII.GetBytes(Type1TestHost.MdevUuid + "\0")) >= 0);
        VfioDevice dev = host.Devices["vgpu"].Vfio!;
        ulong vaddr = (ulong)sys.Mmap(0, 4 * MiB, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        Assert.Equal(0, Map(sys, c, 0x100000, vaddr, 1 * MiB));
        Assert.Equal(0, Map(sys, c, 0x200000, vaddr + 1 * MiB, 1 * MiB));
        Assert.Equal(1, dev.PinPages(0x100000, 1, IommuProt.Read, new Addressing.Pfn[1], 12));
        // While told about the first mapping, the "driver" lets the user replace the second by a larger one.
        driver.OnUnmap = () =>
        {
            Assert.Equal(0, Unmap(sys, c, 0x200000, 1 * MiB));
            Assert.Equal(0, Map(sys, c, 0x200000, vaddr + 1 * MiB, 2 * MiB));
        };

        Assert.Equal(Errno.EINVAL.AsReturn(), Unmap(sys, c, 0x100000, 2 * MiB));

        Assert.Equal(1, driver.Notifications);
        var backend = (VfioIommu)host.Vfio.Containers.Single().Iommu!;
        Assert.Equal([0x100000UL, 0x200000UL], backend.Snapshot().Mappings.Select(x => x.Iova));
        Assert.Empty(backend.Snapshot().Mappings[0].Vpfns);
        Assert.Empty(new VfioLab.Checks.InvariantChecker(host).Check());
    }

    [Fact]
    public void RegisterNotifier_UnknownEvent_ReturnsEINVAL_WithoutTheChain_ENOTTY()
    {
        var chain = new MdevTestHost(Host(notifierChain: true), openDevice: false);
        Assert.Equal(Errno.EINVAL, chain.Backend.RegisterNotifier(chain.Device, VfioIommuNotify.DmaUnmap | 2));
        Assert.Equal(0, chain.Backend.Snapshot().RegisteredDevices);

        var today = new MdevTestHost(new Type1TestHost(), openDevice: false);
        Assert.Equal(Errno.ENOTTY, today.Backend.RegisterNotifier(today.Device, VfioIommuNotify.DmaUnmap));
        Assert.Equal(0, today.Backend.Snapshot().RegisteredDevices);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public void OpenAndCloseDevice_RegistersForUnmapWhileOpen(bool notifierChain)
    {
        var m = new MdevTestHost(Host(notifierChain));
        Assert.Equal(1, m.Backend.Snapshot().RegisteredDevices);
        m.Map(0x100000, 1 * MiB);
        Assert.Equal(2, m.Pin(0x100000, 2));

        Assert.Equal(0, m.T.Sys.Close(m.DeviceFd));

        // The driver released its pins while closing, before it was unregistered.
        Assert.Equal(0, m.Backend.Snapshot().RegisteredDevices);
        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.TotalPins);
        Assert.Equal(0UL, m.T.LockedVmPages);
        m.AssertClean();
    }

    private static Type1TestHost Host(bool notifierChain, bool misbehaving = false) =>
        new(mdevMisbehaving: misbehaving, type1: notifierChain ? new Type1Behavior(UnmapNotifierChain: true) : null);

    private static long Map(ISyscallSurface sys, int c, ulong iova, ulong vaddr, ulong size)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = DmaMapFlags.Read | DmaMapFlags.Write, Vaddr = vaddr, Iova = iova, Size = size }.Write(buf);
        return sys.Ioctl(c, VfioIoctl.IommuMapDma, buf);
    }

    private static long Unmap(ISyscallSurface sys, int c, ulong iova, ulong size)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Iova = iova, Size = size }.Write(buf);
        return sys.Ioctl(c, VfioIoctl.IommuUnmapDma, buf);
    }

    /// <summary>A pinning driver that unpins the one page it pinned when told, after running a test action
    /// (with the container lock released, as the kernel calls it).</summary>
    private sealed class RemappingDriver : IVfioPinningDriver
    {
        public Action? OnUnmap { get; set; }

        public int Notifications { get; private set; }

        public string Name => "test-mdev";

        public bool PinsPages => true;

        public void DmaUnmap(VfioDevice device, ulong iova, ulong size)
        {
            Notifications++;
            Action? a = OnUnmap;
            OnUnmap = null;
            a?.Invoke();
            device.UnpinPages(iova, 1, 12);
        }

        public Errno OpenDevice(VfioDevice device) => Errno.None;

        public void CloseDevice(VfioDevice device)
        {
        }

        public long Ioctl(VfioCallContext context, VfioDevice device, uint request, ref IoctlArgument argument) => Errno.ENOTTY.AsReturn();

        public long Mmap(VfioCallContext context, VfioDevice device, MmapRequest request) => Errno.EINVAL.AsReturn();

        public long Read(VfioDevice device, Span<byte> destination, ulong offset) => Errno.EINVAL.AsReturn();

        public long Write(VfioDevice device, ReadOnlySpan<byte> source, ulong offset) => Errno.EINVAL.AsReturn();
    }
}
