using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;

namespace VfioLab.Bench;

/// <summary>
/// Device memory through the syscall surface: MAP_DMA and UNMAP_DMA of a GPU's 128 GiB BAR mmap for a
/// NIC (peer-to-peer) in the seeds profile (the pfn from the device, one lookup for the whole VMA) and in
/// linux-6.18 (a page walk per 1 GiB block of a 1 GiB-aligned mmap), and zapping the faulted-in BAR mmap
/// by clearing memory decode (then decode on and one CPU access, which faults the whole VMA back). Each
/// operation returns the state to what it was.
/// </summary>
[MemoryDiagnoser]
public class DeviceMemoryBenchmarks
{
    private const ulong GiB = 1UL << 30;
    private const ulong BarSize = 128 * GiB;
    private const ulong Iova = 1UL << 40;

    private DeviceMemoryRig _seeds = null!;
    private DeviceMemoryRig _upstream = null!;
    private DeviceMemoryRig _zap = null!;

    [GlobalSetup(Target = nameof(MapUnmap128GiBBarSeeds))]
    public void SetupSeeds() => _seeds = new DeviceMemoryRig(KernelSettings.Default);

    /// <summary>MAP_DMA and UNMAP_DMA of a 128 GiB BAR, seeds profile (target: MAP under 100 µs).</summary>
    [Benchmark]
    public void MapUnmap128GiBBarSeeds()
    {
        _seeds.MapOrThrow(Iova, _seeds.Bar, BarSize);
        _seeds.UnmapOrThrow(Iova, BarSize);
    }

    [GlobalSetup(Target = nameof(MapUnmap128GiBBarLinux618))]
    public void SetupUpstream() => _upstream = new DeviceMemoryRig(KernelSettings.Default with { Profile = KernelSettings.Linux618 });

    /// <summary>The same under linux-6.18: the page walk, one lookup per 1 GiB block (128).</summary>
    [Benchmark]
    public void MapUnmap128GiBBarLinux618()
    {
        _upstream.MapOrThrow(Iova, _upstream.Bar, BarSize);
        _upstream.UnmapOrThrow(Iova, BarSize);
    }

    [GlobalSetup(Target = nameof(ZapAndRefault128GiBBar))]
    public void SetupZap()
    {
        _zap = new DeviceMemoryRig(KernelSettings.Default);
        _zap.Touch();
    }

    /// <summary>Memory decode off (zaps the whole 128 GiB BAR mmap under memory_lock), on again, and one CPU
    /// access faulting the whole VMA back in.</summary>
    [Benchmark]
    public void ZapAndRefault128GiBBar()
    {
        _zap.SetMemory(false);
        _zap.SetMemory(true);
        _zap.Touch();
    }
}

/// <summary>A GPU with a 128 GiB BAR2 and a NIC in one type1 v2 container; the BAR mmapped 1 GiB-aligned.</summary>
internal sealed class DeviceMemoryRig
{
    private readonly byte[] _map = new byte[VfioIommuType1DmaMap.SizeOf];
    private readonly byte[] _unmap = new byte[VfioIommuType1DmaUnmap.SizeOf];
    private readonly byte[] _cmd = new byte[2];
    private readonly byte[] _one = new byte[1];
    private readonly int _container;
    private readonly int _device;

    public DeviceMemoryRig(KernelSettings kernel)
    {
        Host = new SimulatedHost(1UL << 30, 12, FrameLayout.Contiguous, IommuHardwareProfile.VtD, kernel);
        Host.RegisterType1();
        Add("gpu", "0000:01:00.0", [new PciBarRequest(0, 16UL << 20), new PciBarRequest(2, 128UL << 30, Prefetchable: true)], 1);
        Add("nic", "0000:02:00.0", [new PciBarRequest(0, 1UL << 20)], 2);
        Host.Seal();
        Process = Host.Spawn("qemu", ulong.MaxValue, capIpcLock: false);
        ISyscallSurface sys = Process.Syscalls;
        _container = sys.Open("/dev/vfio/vfio");
        int g1 = sys.Open("/dev/vfio/1");
        int g2 = sys.Open("/dev/vfio/2");
        Check(sys.Ioctl(g1, VfioIoctl.GroupSetContainer, BitConverter.GetBytes(_container)), "SET_CONTAINER");
        Check(sys.Ioctl(g2, VfioIoctl.GroupSetContainer, BitConverter.GetBytes(_container)), "SET_CONTAINER");
        Check(sys.Ioctl(_container, VfioIoctl.SetIommu, VfioExtension.Type1v2Iommu), "SET_IOMMU");
        _device = (int)sys.Ioctl(g1, VfioIoctl.GroupGetDeviceFd, [.. "0000:01:00.0"u8, 0]);
        Check(_device, "GET_DEVICE_FD");
        long bar = sys.Mmap(1UL << 40, 128UL << 30, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared, _device, VfioPci.IndexToOffset(2));
        Check(bar, "mmap BAR2");
        Bar = (ulong)bar;
    }

    public SimulatedHost Host { get; }

    public Process Process { get; }

    /// <summary>Where BAR2 is mapped.</summary>
    public ulong Bar { get; }

    public void MapOrThrow(ulong iova, ulong vaddr, ulong size)
    {
        new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = DmaMapFlags.Read | DmaMapFlags.Write, Vaddr = vaddr, Iova = iova, Size = size }.Write(_map);
        Check(Process.Syscalls.Ioctl(_container, VfioIoctl.IommuMapDma, _map), "MAP_DMA");
    }

    public void UnmapOrThrow(ulong iova, ulong size)
    {
        new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Iova = iova, Size = size }.Write(_unmap);
        Check(Process.Syscalls.Ioctl(_container, VfioIoctl.IommuUnmapDma, _unmap), "UNMAP_DMA");
    }

    /// <summary>A config-space write of PCI_COMMAND with memory decode on or off.</summary>
    public void SetMemory(bool on)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_cmd, on ? (ushort)PciCommand.Memory : (ushort)0);
        Check(Process.Syscalls.Pwrite(_device, _cmd, VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + PciFunction.CommandOffset), "pwrite");
    }

    /// <summary>One CPU read of the BAR mmap's first byte.</summary>
    public void Touch() => Check(Process.Syscalls.ReadMemory(Bar, _one), "read BAR");

    private void Add(string name, string address, PciBarRequest[] bars, int group)
    {
        string? error = Host.AddPciDevice(name, PciAddress.Parse(address), bars, DriverBinding.Vfio, group);
        if (error is not null)
        {
            throw new InvalidOperationException(error);
        }
    }

    private static void Check(long ret, string what)
    {
        if (ret < 0)
        {
            throw new InvalidOperationException($"{what} failed: {ErrnoExtensions.FromReturn(ret)}");
        }
    }
}
