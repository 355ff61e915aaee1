using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;
using VfioLab.Type1;
using VfioLab.Vfio;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Tests.Concurrency;

/// <summary>
/// The host the concurrency stress runs on: a GPU with an audio function on one slot (groups 5 and 6,
/// vfio-pci, so hot reset needs both group fds), an mdev (group 10) with a well-behaved vendor driver, all
/// three groups in one TYPE1v2 container of one process "vmm" with every device fd open and the GPU's BAR0
/// mmapped. Workers (<see cref="ConcurrencyStressTests"/>) act on it from several threads of that process.
/// Two NICs sit behind a second VT-d unit without 1 GiB super pages (<see cref="SecondUnit"/>), each in a
/// group of its own that starts outside every container: the first (group 7) for a worker of "vmm" that
/// attaches and detaches it (a new domain, every mapping replayed), the second (group 8) for a second
/// process with a container of its own.
/// </summary>
internal sealed class StressRig
{
    public const ulong KiB = 1UL << 10;
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;
    public const int GpuGroup = 5;
    public const int AudioGroup = 6;
    public const int MdevGroup = 10;
    public const string Gpu = "0000:05:00.0";
    public const string Audio = "0000:05:00.1";
    public const ulong BarMapSize = 64 * KiB;
    public const int NicGroup = 7;
    public const int Nic2Group = 8;
    public const string Nic = "0000:06:00.0";
    public const string Nic2 = "0000:07:00.0";

    /// <summary>A second VT-d unit whose cap_super_page lacks 1 GiB: the GPU's domain (4K|2M|1G) cannot take
    /// its groups (intel-iommu refuses a domain using a page size the unit lacks), so type1 allocates a new
    /// domain for them and replays every mapping into it; the container's page sizes shrink to 4K|2M.</summary>
    public static readonly IommuHardwareProfile SecondUnit = IommuHardwareProfile.VtD.WithOverrides(pgsizeBitmap: PageSizeBitmap.Size4K | PageSizeBitmap.Size2M);

    public static readonly Guid MdevUuid = new("3c1f3a90-2f4e-4b8e-9d6b-5d2b1e7a0c01");

    public StressRig(KernelSettings? kernel = null)
    {
        Host = new SimulatedHost(256 * MiB, 12, FrameLayout.Contiguous, IommuHardwareProfile.VtD, kernel ?? KernelSettings.Default);
        Host.RegisterType1();
        Check(Host.AddPciDevice("gpu", PciAddress.Parse(Gpu), [new PciBarRequest(0, 16 * MiB)], DriverBinding.Vfio, GpuGroup));
        Check(Host.AddPciDevice("audio", PciAddress.Parse(Audio), [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, AudioGroup));
        Driver = new MdevVendorDriver(misbehaving: false, Host.Machine.PageShift);
        Check(Host.AddMdevDevice("mdev", MdevUuid, Driver, MdevGroup));
        Check(Host.AddPciDevice("nic", PciAddress.Parse(Nic), [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, NicGroup, SecondUnit));
        Check(Host.AddPciDevice("nic2", PciAddress.Parse(Nic2), [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, Nic2Group, SecondUnit));
        Host.Seal();
        Process = Host.Spawn("vmm", ulong.MaxValue, capIpcLock: false);
        Container = Ok(Sys.Open("/dev/vfio/vfio"));
        MdevGroupFd = AddGroup(MdevGroup);
        Assert.Equal(0, Sys.Ioctl(Container, VfioIoctl.SetIommu, VfioExtension.Type1v2Iommu));
        GpuGroupFd = AddGroup(GpuGroup);
        AudioGroupFd = AddGroup(AudioGroup);
        GpuFd = DeviceFd(GpuGroupFd, Gpu);
        AudioFd = DeviceFd(AudioGroupFd, Audio);
        MdevFd = DeviceFd(MdevGroupFd, MdevUuid.ToString());
        Mdev = Host.Devices["mdev"].Vfio!;
        long bar = Sys.Mmap(0, BarMapSize, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared, GpuFd, VfioPci.IndexToOffset(0u));
        Assert.True(bar > 0, $"BAR mmap: {bar}");
        BarVaddr = (ulong)bar;
        Backend = (VfioIommu)Host.Vfio.Containers.Single().Iommu!;
    }

    public SimulatedHost Host { get; }

    public Process Process { get; }

    public ISyscallSurface Sys => Process.Syscalls;

    public MdevVendorDriver Driver { get; }

    public VfioDevice Mdev { get; }

    public VfioIommu Backend { get; }

    public int Container { get; }

    public int MdevGroupFd { get; }

    public int GpuGroupFd { get; }

    public int AudioGroupFd { get; }

    public int GpuFd { get; }

    public int AudioFd { get; }

    public int MdevFd { get; }

    public ulong BarVaddr { get; }

    public ulong PageSize => Host.Machine.PageSize;

    /// <summary>Populated private anonymous memory; returns its address.</summary>
    public ulong Anonymous(ulong size)
    {
        long a = Sys.Mmap(0, size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate, -1, 0);
        Assert.True(a > 0, $"mmap: {a}");
        return (ulong)a;
    }

    /// <summary>Sets or clears PCI_COMMAND_MEMORY of the GPU through a config-space pwrite (QEMU's way); raw result.</summary>
    public long SetGpuMemory(bool on)
    {
        ulong offset = VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + PciFunction.CommandOffset;
        byte[] b = new byte[2];
        long r = Sys.Pread(GpuFd, b, offset);
        if (r != 2)
        {
            return r;
        }
        ushort cmd = BinaryPrimitives.ReadUInt16LittleEndian(b);
        cmd = on ? (ushort)(cmd | (ushort)PciCommand.Memory) : (ushort)(cmd & ~(ushort)PciCommand.Memory);
        BinaryPrimitives.WriteUInt16LittleEndian(b, cmd);
        return Sys.Pwrite(GpuFd, b, offset);
    }

    /// <summary>VFIO_DEVICE_PCI_HOT_RESET of the GPU's slot with both group fds; raw result.</summary>
    public long HotReset()
    {
        byte[] buffer = new byte[VfioPciHotReset.SizeOf + 8];
        new VfioPciHotReset { Argsz = (uint)buffer.Length, Count = 2 }.Write(buffer);
        BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(VfioPciHotReset.Offsets.GroupFds), GpuGroupFd);
        BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(VfioPciHotReset.Offsets.GroupFds + 4), AudioGroupFd);
        return Sys.Ioctl(GpuFd, VfioIoctl.DevicePciHotReset, buffer);
    }

    /// <summary>The checker's violations, one line each (empty when clean).</summary>
    public string Violations() =>
        string.Join("\n", new InvariantChecker(Host).Check().Select(v => $"{v.Invariant}: {v.Message}"));

    private int AddGroup(int number)
    {
        int g = Ok(Sys.Open($"/dev/vfio/{number}"));
        Assert.Equal(0, SetContainer(Sys, g, Container));
        return g;
    }

    /// <summary>VFIO_GROUP_GET_DEVICE_FD through <paramref name="sys"/>; raw result.</summary>
    public static long GetDeviceFd(ISyscallSurface sys, int groupFd, string name) => sys.Ioctl(groupFd, VfioIoctl.GroupGetDeviceFd, [.. Encoding.UTF8.GetBytes(name), 0]);

    /// <summary>VFIO_GROUP_SET_CONTAINER of <paramref name="groupFd"/> into <paramref name="container"/>; raw result.</summary>
    public static long SetContainer(ISyscallSurface sys, int groupFd, int container)
    {
        Span<byte> arg = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(arg, container);
        return sys.Ioctl(groupFd, VfioIoctl.GroupSetContainer, arg);
    }

    /// <summary>The type1 state behind a container fd of <paramref name="process"/>, or null.</summary>
    public static VfioIommu? BackendOf(Process process, int containerFd)
    {
        if (!process.Fds.TryGet(containerFd, out OpenFile file))
        {
            return null;
        }
        try
        {
            return (file.Operations as VfioContainerFile)?.Container.Iommu as VfioIommu;
        }
        finally
        {
            file.Put();
        }
    }

    private int DeviceFd(int groupFd, string name) => Ok((int)Sys.Ioctl(groupFd, VfioIoctl.GroupGetDeviceFd, [.. Encoding.UTF8.GetBytes(name), 0]));

    private static int Ok(int fd)
    {
        Assert.True(fd >= 0, $"open: {ErrnoExtensions.FromReturn(fd)}");
        return fd;
    }

    private static void Check(string? error) => Assert.True(error is null, error);
}
