using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;
using VfioLab.Tests.Vfio.Fakes;
using VfioLab.Vfio;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Tests.Vfio;

/// <summary>
/// The host every VFIO core test runs on: two viable groups (a GPU with two BARs, a NIC), one
/// non-viable group (a function bound to a host driver beside a vfio-pci one), and one mdev, with the
/// given backends registered in order; plus one process and syscall helpers that return the raw
/// result (&gt;= 0 or -errno), so tests assert the errno themselves.
/// </summary>
internal sealed class VfioTestHost
{
    public const ulong MiB = 1UL << 20;

    public const int GpuGroup = 1;
    public const int NicGroup = 2;
    public const int NonViableGroup = 3;
    public const int MdevGroup = 10;

    public const string GpuName = "0000:01:00.0";
    public const string NicName = "0000:02:00.0";
    public const string HostOwnedName = "0000:03:00.0";
    public const string NonViableVfioName = "0000:03:00.1";

    /// <summary>GPU BAR0: 64-bit, 16 MiB (so BAR1 is its upper half and reports size 0).</summary>
    public const ulong GpuBar0Size = 16 * MiB;

    /// <summary>GPU BAR2: 32-bit, 64 KiB.</summary>
    public const ulong GpuBar2Size = 64 * 1024;

    public static readonly Guid MdevUuid = new("5a0e2f6c-1d7b-4c43-9a53-0c3bd0b6f001");

    public static string MdevName => MdevUuid.ToString();

    public VfioTestHost(params IVfioIommuDriver[] backends)
    {
        Host = new SimulatedHost(64 * MiB, 12, FrameLayout.Contiguous, IommuHardwareProfile.VtD, KernelSettings.Default);
        foreach (IVfioIommuDriver backend in backends)
        {
            Host.RegisterIommuDriver(backend);
        }
        Check(Host.AddPciDevice("gpu", PciAddress.Parse(GpuName),
            [new PciBarRequest(0, GpuBar0Size), new PciBarRequest(2, GpuBar2Size, Is64Bit: false)], DriverBinding.Vfio, GpuGroup));
        Check(Host.AddPciDevice("nic", PciAddress.Parse(NicName), [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, NicGroup));
        Check(Host.AddPciDevice("hostdev", PciAddress.Parse(HostOwnedName), [new PciBarRequest(0, 1 * MiB)], DriverBinding.Host, NonViableGroup));
        Check(Host.AddPciDevice("vfiodev3", PciAddress.Parse(NonViableVfioName), [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, NonViableGroup));
        Check(Host.AddMdevDevice("mdev", MdevUuid, new MdevVendorDriver(misbehaving: false, Host.Machine.PageShift), MdevGroup));
        Host.Seal();
        Process = Host.Spawn("vmm", ulong.MaxValue, capIpcLock: false);
    }

    public SimulatedHost Host { get; }

    public Process Process { get; }

    public ISyscallSurface Sys => Process.Syscalls;

    /// <summary>Open fds of the test process.</summary>
    public int FdCount => Process.Fds.Count;

    /// <summary>A host with one type1-like fake backend.</summary>
    public static VfioTestHost WithFake(out FakeIommuDriver fake)
    {
        fake = new FakeIommuDriver();
        return new VfioTestHost(fake);
    }

    public VfioGroup Group(int number) => Host.Vfio.FindGroup(number) ?? throw new InvalidOperationException($"no VFIO group {number}");

    public IommuGroup IommuGroup(int number) => Host.IommuGroups[number];

    public VfioDevice Device(string deviceName)
    {
        foreach (VfioGroup g in Host.Vfio.Groups)
        {
            if (g.FindDevice(deviceName, out VfioDevice? d) == Errno.None)
            {
                return d!;
            }
        }
        throw new InvalidOperationException($"no VFIO device {deviceName}");
    }

    public PciFunction Function(string deviceName) => Host.Pci.TryGetFunction(PciAddress.Parse(deviceName), out PciFunction? f)
        ? f! : throw new InvalidOperationException($"no PCI function {deviceName}");

    /// <summary>The container behind a container fd of the test process.</summary>
    public VfioContainer ContainerOf(int containerFd) => FileOperations<VfioContainerFile>(containerFd).Container;

    /// <summary>The open file behind <paramref name="fd"/>, or null.</summary>
    public OpenFile? FileOf(int fd)
    {
        if (!Process.Fds.TryGet(fd, out OpenFile file))
        {
            return null;
        }
        file.Put();
        return file;
    }

    public T FileOperations<T>(int fd)
        where T : class, IFileOperations =>
        FileOf(fd)?.Operations as T ?? throw new InvalidOperationException($"fd {fd} is not a {typeof(T).Name}");

    public int OpenContainer() => Opened(Sys.Open("/dev/vfio/vfio"));

    public int OpenGroup(int number) => Opened(Sys.Open($"/dev/vfio/{number}"));

    /// <summary>Opens a container and group <paramref name="number"/> and puts the group in it.</summary>
    public (int Container, int Group) Attach(int number)
    {
        int c = OpenContainer();
        int g = OpenGroup(number);
        Assert.Equal(0, SetContainer(g, c));
        return (c, g);
    }

    /// <summary>Container, GPU group in it, SET_IOMMU TYPE1v2, and a GPU device fd.</summary>
    public (int Container, int Group, int Device) OpenGpu()
    {
        (int c, int g) = Attach(GpuGroup);
        Assert.Equal(0, Sys.Ioctl(c, VfioIoctl.SetIommu, VfioExtension.Type1v2Iommu));
        int d = (int)GetDeviceFd(g, GpuName);
        Assert.True(d >= 0, $"GET_DEVICE_FD: {ErrnoExtensions.FromReturn(d)}");
        return (c, g, d);
    }

    public long SetContainer(int groupFd, int containerFd) => SetContainer(Sys, groupFd, containerFd);

    public static long SetContainer(ISyscallSurface sys, int groupFd, int containerFd)
    {
        Span<byte> arg = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(arg, containerFd);
        return sys.Ioctl(groupFd, VfioIoctl.GroupSetContainer, arg);
    }

    public long UnsetContainer(int groupFd) => Sys.Ioctl(groupFd, VfioIoctl.GroupUnsetContainer, 0);

    public long CheckExtension(int containerFd, uint extension) => Sys.Ioctl(containerFd, VfioIoctl.CheckExtension, extension);

    public long SetIommu(int containerFd, uint type) => Sys.Ioctl(containerFd, VfioIoctl.SetIommu, type);

    public long GetStatus(int groupFd, out GroupStatusFlags flags) => GetStatus(Sys, groupFd, out flags);

    public static long GetStatus(ISyscallSurface sys, int groupFd, out GroupStatusFlags flags)
    {
        Span<byte> arg = stackalloc byte[VfioGroupStatus.SizeOf];
        new VfioGroupStatus { Argsz = VfioGroupStatus.SizeOf }.Write(arg);
        long r = sys.Ioctl(groupFd, VfioIoctl.GroupGetStatus, arg);
        VfioGroupStatus.TryRead(arg, out VfioGroupStatus status);
        flags = status.Flags;
        return r;
    }

    /// <summary>The flags GET_STATUS would report, read from the model (no fd needed).</summary>
    public GroupStatusFlags StatusOf(int number)
    {
        Assert.Equal(Errno.None, Group(number).GetStatus(out GroupStatusFlags flags));
        return flags;
    }

    public long GetDeviceFd(int groupFd, string name) => GetDeviceFd(Sys, groupFd, name);

    public static long GetDeviceFd(ISyscallSurface sys, int groupFd, string name)
    {
        byte[] arg = [.. Encoding.UTF8.GetBytes(name), 0];
        return sys.Ioctl(groupFd, VfioIoctl.GroupGetDeviceFd, arg);
    }

    /// <summary>An anonymous private read-write mapping of <paramref name="size"/> bytes.</summary>
    public ulong MapAnonymous(ulong size)
    {
        long r = Sys.Mmap(0, size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        Assert.True(r > 0, $"mmap: {ErrnoExtensions.FromReturn(r)}");
        return (ulong)r;
    }

    /// <summary>Whether the test process's page table maps <paramref name="address"/> now.</summary>
    public bool IsPresent(ulong address)
    {
        AddressSpace mm = Process.Mm!;
        mm.MmapReadLock();
        try
        {
            return mm.TryTranslateLocked(new HostVirtAddr(address), out _);
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    private static int Opened(int fd)
    {
        Assert.True(fd >= 0, $"open: {ErrnoExtensions.FromReturn(fd)}");
        return fd;
    }

    private static void Check(string? error)
    {
        if (error is not null)
        {
            throw new InvalidOperationException(error);
        }
    }
}
