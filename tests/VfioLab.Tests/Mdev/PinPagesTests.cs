using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Tests.Type1;
using VfioLab.Tests.Vfio;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Type1;
using VfioLab.Vfio;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Tests.Mdev;

/// <summary>
/// vfio_pin_pages (spec §1.8, §3.7; vfio_main.c, container.c, vfio_iommu_type1_pin_pages): every errno in the
/// kernel's order, each followed by the state it leaves (no pin, charge or external pin from the failed call),
/// and the success cases: refcounted external pins, one page pin each, charged only without a domain.
/// </summary>
public sealed class PinPagesTests
{
    private const ulong MiB = Type1TestHost.MiB;

    [Fact]
    public void PinPages_NoDomain_PinsChargesAndRecordsEachPage()
    {
        var m = new MdevTestHost(new Type1TestHost());
        ulong vaddr = m.Map(0x100000, 1 * MiB);
        ulong pinsBefore = m.T.TotalPins;

        Assert.Equal(3, m.Pin(0x101000, 3, out Pfn[] pfns));

        Assert.Equal(3UL, m.T.LockedVmPages);
        Assert.Equal(pinsBefore + 3, m.T.TotalPins);
        Assert.Equal([0x101000UL, 0x102000UL, 0x103000UL], m.Vpfns(0x100000).Select(v => v.Key));
        Assert.All(m.Vpfns(0x100000), v => Assert.Equal(1U, v.Value.RefCount));
        Assert.Equal(3L, m.Mapping(0x100000).LockedVm);
        for (int i = 0; i < 3; i++)
        {
            // The pfn is the frame behind the owner's vaddr of that page.
            Assert.Equal(pfns[i], m.Vpfns(0x100000)[i].Value.Pfn);
        }
        Assert.Equal(3UL, m.Driver.PinsHeld);
        _ = vaddr;
        m.AssertClean();
    }

    [Fact]
    public void PinPages_SamePageTwice_CountsTheExternalPinHoldsOnePagePin()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        ulong pinsBefore = m.T.TotalPins;

        Assert.Equal(2, m.Pin(0x100000, 2));
        Assert.Equal(1, m.Pin(0x101000, 1));

        Assert.Equal(2U, m.Vpfns(0x100000).Single(v => v.Key == 0x101000).Value.RefCount);
        Assert.Equal(pinsBefore + 2, m.T.TotalPins);
        Assert.Equal(2UL, m.T.LockedVmPages);
        m.AssertClean();

        Assert.True(m.Unpin(0x101000, 1));
        Assert.Equal(1U, m.Vpfns(0x100000).Single(v => v.Key == 0x101000).Value.RefCount);
        Assert.Equal(2UL, m.T.LockedVmPages);
        Assert.True(m.Unpin(0x100000, 2));
        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(pinsBefore, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void PinPages_WithDomain_TakesASecondPinButChargesNothing()
    {
        var m = new MdevTestHost(new Type1TestHost(), withGpu: true);
        m.Map(0x100000, 1 * MiB);
        ulong charged = m.T.LockedVmPages;
        ulong pins = m.T.TotalPins;
        Assert.Equal(256UL, charged);

        Assert.Equal(4, m.Pin(0x100000, 4, out Pfn[] pfns));

        Assert.Equal(charged, m.T.LockedVmPages);
        Assert.Equal(pins + 4, m.T.TotalPins);
        // The external pin is of the frame the domain translates the page to.
        PhysAddr phys = m.GpuDomain!.IovaToPhys(new Iova(0x100000));
        Assert.Equal(phys.Value >> 12, pfns[0].Value);
        Assert.Equal(2UL, m.T.Machine.Memory.PinCount(pfns[0]));
        m.AssertClean();
    }

    [Fact]
    public void PinPages_NullPagesArray_ReturnsEINVAL()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);

        Assert.Equal(Errno.EINVAL.AsReturn(), m.Device.PinPages(0x100000, 1, IommuProt.Read, null, 12));

        Assert.Empty(m.Vpfns(0x100000));
        m.AssertClean();
    }

    [Fact]
    public void PinPages_ZeroPages_ReturnsEINVAL()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);

        Assert.Equal(Errno.EINVAL.AsReturn(), m.Pin(0x100000, 0));

        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.Driver.PinsHeld);
    }

    [Fact]
    public void PinPages_DeviceNotOpen_ReturnsEINVAL()
    {
        var m = new MdevTestHost(new Type1TestHost(), openDevice: false);
        m.Map(0x100000, 1 * MiB);

        Assert.Equal(Errno.EINVAL.AsReturn(), m.Pin(0x100000, 1));

        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.LockedVmPages);
    }

    [Fact]
    public void PinPages_DriverWithoutDmaUnmap_ReturnsEINVAL()
    {
        var t = new Type1TestHost();
        (int c, int g) = t.Container(Type1TestHost.GpuGroup);
        ulong vaddr = t.MmapAnonymous(1 * MiB, populate: true);
        Assert.Equal(0, t.Map(c, 0x100000, vaddr, 1 * MiB));
        long fd = t.Sys.Ioctl(g, VfioIoctl.GroupGetDeviceFd, System.Text.Encoding.ASCII.GetBytes(Type1TestHost.GpuName + "\0"));
        Assert.True(fd >= 0);
        VfioDevice gpu = t.Host.Devices["gpu"].Vfio!;
        ulong pins = t.TotalPins;

        Assert.Equal(Errno.EINVAL.AsReturn(), gpu.PinPages(0x100000, 1, IommuProt.Read, new Pfn[1], 12));

        Assert.Equal(pins, t.TotalPins);
        Assert.Empty(t.Backend(c).Snapshot().Mappings[0].Vpfns);
    }

    [Theory]
    [InlineData(12, 513)]
    [InlineData(16, 8193)]
    public void PinPages_MoreThanOnePageOfPointers_ReturnsE2BIG(int pageShift, int npage)
    {
        var m = new MdevTestHost(new Type1TestHost(memory: 1024 * MiB, pageShift: pageShift, iommu: pageShift == 16 ? IommuHardwareProfile.SmmuV3 : null));
        ulong size = 1024 * MiB / 2;
        m.Map(0, size);

        Assert.Equal(Errno.E2BIG.AsReturn(), m.Pin(0, npage));
        Assert.Equal(npage - 1, m.Pin(0, npage - 1));

        Assert.Equal(npage - 1, m.Vpfns(0).Count);
        Assert.Equal((ulong)(npage - 1), m.T.LockedVmPages);
    }

    [Fact]
    public void PinPages_BackendWithoutPinPages_ReturnsENOTTY()
    {
        var t = VfioTestHost.WithFake(out FakeIommuDriver _);
        (int c, int g) = t.Attach(VfioTestHost.MdevGroup);
        Assert.Equal(0, t.SetIommu(c, VfioExtension.Type1v2Iommu));
        Assert.True(t.GetDeviceFd(g, VfioTestHost.MdevName) >= 0);
        VfioDevice mdev = t.Device(VfioTestHost.MdevName);
        var driver = (MdevVendorDriver)mdev.Driver;

        Assert.Equal(Errno.ENOTTY.AsReturn(), driver.PinPages(mdev, 0x100000, 1, IommuProt.Read, new Pfn[1]));
        Assert.Equal(Errno.ENOTTY, MdevVendorDriver.DmaRw(mdev, 0x100000, new byte[4], write: false, null));

        Assert.Equal(0UL, driver.PinsHeld);
        Assert.Equal(0UL, t.Host.Machine.Memory.TotalPins);
    }

    [Fact]
    public void PinPages_V1Container_ReturnsEACCES()
    {
        var m = new MdevTestHost(new Type1TestHost(), type: VfioExtension.Type1Iommu);
        m.Map(0x100000, 1 * MiB);

        Assert.Equal(Errno.EACCES.AsReturn(), m.Pin(0x100000, 1));

        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(0UL, m.T.TotalPins);
    }

    [Fact]
    public void PinPages_VaddrsInvalidated_ReturnsEBUSY()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        // UNMAP(VADDR) is refused while an emulated group is attached (ef3a3f6a294b), so the count is set
        // behind the backend's back to reach the check.
        m.Backend.TestHooks.SetVaddrInvalidCountForTest(1);

        Assert.Equal(Errno.EBUSY.AsReturn(), m.Pin(0x100000, 1));
        Assert.Equal(Errno.EBUSY, m.Rw(0x100000, new byte[8], write: false));

        m.Backend.TestHooks.SetVaddrInvalidCountForTest(0);
        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.LockedVmPages);
        m.AssertClean();
    }

    [Fact]
    public void PinPages_NoDeviceRegisteredForUnmap_ReturnsEINVAL()
    {
        var m = new MdevTestHost(new Type1TestHost(), openDevice: false);
        m.Map(0x100000, 1 * MiB);

        // The backend's own check, reached directly: nobody could be told to unpin.
        Assert.Equal(Errno.EINVAL.AsReturn(), m.Backend.PinPages(m.Device, 0x100000, 1, IommuProt.Read, new Pfn[1]));

        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.TotalPins);
    }

    [Fact]
    public void PinPages_LastPageOutsideEveryMapping_ReturnsEINVALAndReleasesTheOthers()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 0x3000);
        Assert.Equal(1, m.Pin(0x100000, 1));
        ulong pins = m.T.TotalPins;

        Assert.Equal(Errno.EINVAL.AsReturn(), m.Pin(0x100000, 4, out Pfn[] pfns));

        Assert.All(pfns, p => Assert.Equal(default, p));
        KeyValuePair<ulong, VfioPfn> only = Assert.Single(m.Vpfns(0x100000));
        Assert.Equal(1U, only.Value.RefCount);
        Assert.Equal(pins, m.T.TotalPins);
        Assert.Equal(1UL, m.T.LockedVmPages);
        Assert.Equal(1UL, m.Driver.PinsHeld);
        m.AssertClean();
    }

    [Fact]
    public void PinPages_WriteOnReadOnlyMapping_ReturnsEPERM()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB, DmaMapFlags.Read);

        Assert.Equal(Errno.EPERM.AsReturn(), m.Pin(0x100000, 1, IommuProt.Write));
        Assert.Equal(Errno.EPERM.AsReturn(), m.Pin(0x100000, 1, IommuProt.Read | IommuProt.Write));
        Assert.Equal(1, m.Pin(0x100000, 1, IommuProt.Read));

        Assert.Single(m.Vpfns(0x100000));
        Assert.Equal(1UL, m.T.LockedVmPages);
        m.AssertClean();
    }

    [Fact]
    public void PinPages_OwnerMmGone_ReturnsENODEV()
    {
        var t = new Type1TestHost();
        var m = new MdevTestHost(t);
        ulong vaddr = t.MmapAnonymous(1 * MiB, populate: true);
        // A child inherits the container and device fds; the parent made the mapping and exits.
        ISyscallSurface child = t.Sys.Fork();
        Assert.Equal(0, t.Map(m.Container, 0x100000, vaddr, 1 * MiB));
        VfioIommu backend = m.Backend;
        t.Sys.Exit();
        Assert.False(t.Process.LastMm.IsAlive);

        Assert.Equal(Errno.ENODEV.AsReturn(), m.Pin(0x100000, 1));
        Assert.Equal(Errno.EPERM, m.Rw(0x100000, new byte[8], write: false));

        Assert.Empty(backend.Snapshot().Mappings.Single().Vpfns);
        Assert.Equal(0UL, t.TotalPins);
        child.Exit();
        Assert.Equal(0UL, t.TotalPins);
    }

    [Fact]
    public void PinPages_OwnerMemoryUnmapped_ReturnsEFAULT()
    {
        var m = new MdevTestHost(new Type1TestHost());
        ulong vaddr = m.Map(0x100000, 0x4000);
        Assert.Equal(0, m.T.Sys.Munmap(vaddr + 0x2000, 0x1000));
        ulong pins = m.T.TotalPins;

        Assert.Equal(Errno.EFAULT.AsReturn(), m.Pin(0x100000, 4));

        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(pins, m.T.TotalPins);
        Assert.Equal(0UL, m.T.LockedVmPages);
        m.AssertClean();
    }

    [Fact]
    public void PinPages_PastMemlockWithoutDomain_ReturnsENOMEMAndUnchargesTheOthers()
    {
        var m = new MdevTestHost(new Type1TestHost(memlock: 0x3000));
        m.Map(0x100000, 1 * MiB);
        ulong pins = m.T.TotalPins;

        Assert.Equal(Errno.ENOMEM.AsReturn(), m.Pin(0x100000, 4));

        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(pins, m.T.TotalPins);
        Assert.Equal(3, m.Pin(0x100000, 3));
        Assert.Equal(3UL, m.T.LockedVmPages);
        m.AssertClean();
    }

    [Fact]
    public void PinPages_PastMemlockWithDomain_SucceedsUncharged()
    {
        var t = new Type1TestHost(memlock: 1 * MiB);
        var m = new MdevTestHost(t, withGpu: true);
        m.Map(0x100000, 1 * MiB);

        Assert.Equal(8, m.Pin(0x100000, 8));

        Assert.Equal(256UL, t.LockedVmPages);
        m.AssertClean();
    }

    [Fact]
    public void PinPages_AccountingInterrupted_ReturnsEINTR()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        m.T.Host.Faults.Arm(2, FaultSite.LockAcct);

        Assert.Equal(Errno.EINTR.AsReturn(), m.Pin(0x100000, 3));

        Assert.True(m.T.Host.Faults.Fired);
        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(0UL, m.T.TotalPins);
    }

    [Fact]
    public void PinPages_PfnWithoutStructPage_ReturnsEINVAL()
    {
        var m = new MdevTestHost(new Type1TestHost(kernel: new KernelSettings(KernelSettings.Linux618, [])));
        ulong vaddr = m.T.MmapAnonymous(0x2000, populate: true);
        Pfn mmio = m.T.Machine.AllocateMmioPfns(1);
        Assert.Equal((long)(vaddr + 0x1000), m.T.Process.Mm!.MmapOtherMmio(vaddr + 0x1000, 0x1000,
            MemoryProtection.Read | MemoryProtection.Write, true, false, mmio));
        Assert.Equal(0, m.T.Map(m.Container, 0x100000, vaddr, 0x2000));

        Assert.Equal(Errno.EINVAL.AsReturn(), m.Pin(0x100000, 2));

        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(0UL, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void PinPages_OtherDriversMmioUnderSeedsStrict_ReturnsENODEV()
    {
        // Seeds (seed 003): vaddr_get_pfn's PFNMAP branch is shared by MAP and external pinning, so strict_mmio_maps
        // refuses another driver's MMIO to vfio_pin_pages too (vfio_device_get_from_vma finds no vfio device).
        var m = new MdevTestHost(new Type1TestHost());
        ulong vaddr = m.T.MmapAnonymous(0x2000, populate: true);
        Pfn mmio = m.T.Machine.AllocateMmioPfns(1);
        Assert.Equal((long)(vaddr + 0x1000), m.T.Process.Mm!.MmapOtherMmio(vaddr + 0x1000, 0x1000,
            MemoryProtection.Read | MemoryProtection.Write, true, false, mmio));
        Assert.Equal(0, m.T.Map(m.Container, 0x100000, vaddr, 0x2000));

        Assert.Equal(Errno.ENODEV.AsReturn(), m.Pin(0x100000, 2));

        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(0UL, m.T.TotalPins);
        m.AssertClean();
    }

    [Fact]
    public void PinPages_NegativeCount_V618ReturnsEINVAL_V617ReturnsZero()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        Assert.Equal(Errno.EINVAL.AsReturn(), m.Backend.PinPages(m.Device, 0x100000, -1, IommuProt.Read, new Pfn[1]));

        var v617 = new MdevTestHost(V617Host());
        v617.Map(0x100000, 1 * MiB);
        Assert.Equal(0, v617.Backend.PinPages(v617.Device, 0x100000, -1, IommuProt.Read, new Pfn[1]));
        Assert.Empty(v617.Vpfns(0x100000));
        Assert.Equal(0UL, v617.T.TotalPins);
    }

    [Fact]
    public void PinPages_RangeWrapsPastTheTop_ReturnsEOVERFLOW()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(ulong.MaxValue - 0xfff, 0x1000);

        Assert.Equal(Errno.EOVERFLOW.AsReturn(), m.Pin(ulong.MaxValue - 0xfff, 2));
        Assert.Equal(1, m.Pin(ulong.MaxValue - 0xfff, 1));

        Assert.Single(m.Vpfns(ulong.MaxValue - 0xfff));
        m.AssertClean();
    }

    [Fact]
    public void PinPages_UnalignedIova_ReturnsEINVAL()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);

        Assert.Equal(Errno.EINVAL.AsReturn(), m.Pin(0x100800, 1));

        Assert.Empty(m.Vpfns(0x100000));
    }

    [Fact]
    public void PinPages_VpfnAllocationFails_ReturnsENOMEMAndReleasesThePage()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 1 * MiB);
        m.T.Host.Faults.Arm(1, FaultSite.VpfnAlloc);

        Assert.Equal(Errno.ENOMEM.AsReturn(), m.Pin(0x100000, 1));

        Assert.True(m.T.Host.Faults.Fired);
        Assert.Empty(m.Vpfns(0x100000));
        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(0UL, m.T.TotalPins);
    }

    private static Type1TestHost V617Host() => new(type1: new Type1Behavior(OverflowIsEoverflow: false));
}
