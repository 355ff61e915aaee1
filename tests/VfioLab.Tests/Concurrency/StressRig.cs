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

    public static readonly Guid MdevUuid = new("3c1f3a90-2f4e-4b8e-9d6b-5d2b1e7a0c01");

    public StressRig(KernelSettings? kernel = null)
    {
        Host = new SimulatedHost(256 * MiB, 12, FrameLayout.Contiguous, IommuHardwareProfile.VtD, kernel ?? KernelSettings.Default);
        Host.RegisterType1();
        Check(Host.AddPciDevice("gpu", PciAddress.Parse(Gpu), [new PciBarRequest(0, 16 * MiB)], DriverBinding.Vfio, GpuGroup));
        Check(Host.AddPciDevice("audio", PciAddress.Parse(Audio), [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, AudioGroup));
        Driver = new MdevVendorDriver(misbehaving: false, Host.Machine.PageShift);
        Check(Host.AddMdevDevice("mdev", MdevUuid, Driver, MdevGroup));
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
        Span<byte> arg = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(arg, Container);
        Assert.Equal(0, Sys.Ioctl(g, VfioIoctl.GroupSetContainer, arg));
        return g;
    }

    private int DeviceFd(int groupFd, string name) => Ok((int)Sys.Ioctl(groupFd, VfioIoctl.GroupGetDeviceFd, [.. Encoding.UTF8.GetBytes(name), 0]));

    private static int Ok(int fd)
    {
        Assert.True(fd >= 0, $"open: {ErrnoExtensions.FromReturn(fd)}");
        return fd;
    }

    private static void Check(string? error) => Assert.True(error is null, error);
}
