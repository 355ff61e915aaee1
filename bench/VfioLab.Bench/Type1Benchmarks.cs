using BenchmarkDotNet.Attributes;
using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;

namespace VfioLab.Bench;

/// <summary>
/// The type1 backend through the syscall surface (MAP_DMA and UNMAP_DMA ioctls with their structs):
/// a 1 TiB guest on 1 GiB pages, 64 GiB on frames scattered in runs of 16 pages, and a 4 KiB
/// map/unmap pair among 65,535 live mappings. Each operation maps and unmaps, so the state after an
/// iteration equals the state before it.
/// </summary>
[MemoryDiagnoser]
public class Type1Benchmarks
{
    private const ulong GiB = 1UL << 30;

    private Type1Rig _tera = null!;
    private Type1Rig _scattered = null!;
    private Type1Rig _small = null!;
    private ulong _smallVaddr;

    [GlobalSetup(Target = nameof(MapUnmap1TiBOn1GiBPages))]
    public void SetupTera()
    {
        _tera = new Type1Rig(1100 * GiB, FrameLayout.Contiguous, dmaEntryLimit: 65535);
        ulong ram = _tera.Mmap(1024 * GiB, MmapFlags.HugeTlb | MmapFlags.Huge1GiB);
        _tera.Vaddr = ram;
        // Fault the guest in once, as a booted guest is; the measured pairs then pin and unpin.
        _tera.MapOrThrow(4 * GiB, ram, 1024 * GiB);
        _tera.UnmapOrThrow(4 * GiB, 1024 * GiB);
    }

    /// <summary>MAP_DMA and UNMAP_DMA of 1 TiB on 1 GiB huge pages (target: under 5 ms for the pair).</summary>
    [Benchmark]
    public void MapUnmap1TiBOn1GiBPages()
    {
        _tera.MapOrThrow(4 * GiB, _tera.Vaddr, 1024 * GiB);
        _tera.UnmapOrThrow(4 * GiB, 1024 * GiB);
    }

    [GlobalSetup(Target = nameof(MapUnmap64GiBScattered16))]
    public void SetupScattered()
    {
        _scattered = new Type1Rig(72 * GiB, FrameLayout.ScatteredRuns(16, 7), dmaEntryLimit: 65535);
        ulong ram = _scattered.Mmap(64 * GiB, MmapFlags.Populate);
        _scattered.Vaddr = ram;
    }

    /// <summary>MAP_DMA and UNMAP_DMA of 64 GiB whose frames come in physically contiguous runs of 16
    /// pages: 1 M chunks, 16.8 M pages (target: over 20 M pages/s, i.e. under 839 ms for the pair).</summary>
    [Benchmark]
    public void MapUnmap64GiBScattered16()
    {
        _scattered.MapOrThrow(4 * GiB, _scattered.Vaddr, 64 * GiB);
        _scattered.UnmapOrThrow(4 * GiB, 64 * GiB);
    }

    [GlobalSetup(Target = nameof(MapUnmap4KiBAmong65535))]
    public void SetupSmall()
    {
        _small = new Type1Rig(2 * GiB, FrameLayout.Contiguous, dmaEntryLimit: 65536);
        ulong ram = _small.Mmap(65536 * 4096UL, MmapFlags.Populate);
        for (ulong i = 0; i < 65535; i++)
        {
            _small.MapOrThrow(0x1_0000_0000 + (i * 8192), ram + (i * 4096), 4096);
        }
        _smallVaddr = ram + (65535 * 4096UL);
    }

    /// <summary>One 4 KiB MAP_DMA and its UNMAP_DMA with 65,535 other mappings live (target: under 1 µs).</summary>
    [Benchmark]
    public void MapUnmap4KiBAmong65535()
    {
        _small.MapOrThrow(0x1_0000_1000 + (32768 * 8192UL), _smallVaddr, 4096);
        _small.UnmapOrThrow(0x1_0000_1000 + (32768 * 8192UL), 4096);
    }
}

/// <summary>A simulated host with one vfio-pci device in a type1 v2 container, driven through the syscall surface.</summary>
internal sealed class Type1Rig
{
    private readonly byte[] _map = new byte[VfioIommuType1DmaMap.SizeOf];
    private readonly byte[] _unmap = new byte[VfioIommuType1DmaUnmap.SizeOf];
    private readonly int _container;

    public Type1Rig(ulong memory, FrameLayout layout, uint dmaEntryLimit)
    {
        Host = new SimulatedHost(memory, 12, layout, IommuHardwareProfile.VtD, KernelSettings.Default with { DmaEntryLimit = dmaEntryLimit });
        Host.RegisterType1();
        string? error = Host.AddPciDevice("gpu", PciAddress.Parse("0000:01:00.0"), [new PciBarRequest(0, 16UL << 20)], DriverBinding.Vfio, 1);
        if (error is not null)
        {
            throw new InvalidOperationException(error);
        }
        Host.Seal();
        Process = Host.Spawn("qemu", ulong.MaxValue, capIpcLock: false);
        _container = Process.Syscalls.Open("/dev/vfio/vfio");
        int group = Process.Syscalls.Open("/dev/vfio/1");
        byte[] fd = BitConverter.GetBytes(_container);
        Check(Process.Syscalls.Ioctl(group, VfioIoctl.GroupSetContainer, fd), "SET_CONTAINER");
        Check(Process.Syscalls.Ioctl(_container, VfioIoctl.SetIommu, VfioExtension.Type1v2Iommu), "SET_IOMMU");
    }

    public SimulatedHost Host { get; }

    public Process Process { get; }

    /// <summary>The container's fd.</summary>
    public int ContainerFd => _container;

    /// <summary>The container's type1 backend.</summary>
    public VfioLab.Type1.VfioIommu Backend
    {
        get
        {
            Process.Fds.TryGet(_container, out OpenFile file);
            file.Put();
            return (VfioLab.Type1.VfioIommu)((VfioLab.Vfio.VfioContainerFile)file.Operations).Container.Iommu!;
        }
    }

    public ulong Vaddr { get; set; }

    public ulong Mmap(ulong size, MmapFlags extra)
    {
        long a = Process.Syscalls.Mmap(0, size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous | extra, -1, 0);
        Check(a, "mmap");
        return (ulong)a;
    }

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

    private static void Check(long ret, string what)
    {
        if (ret < 0)
        {
            throw new InvalidOperationException($"{what} failed: {ErrnoExtensions.FromReturn(ret)}");
        }
    }
}
