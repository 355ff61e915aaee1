using BenchmarkDotNet.Attributes;
using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;

namespace VfioLab.Bench;

/// <summary>
/// The sPAPR TCE backend at VM scale, through the typed client on a simulated POWER host (64 KiB pages): a 1 TiB
/// guest on 1 GiB hugetlb pages pre-registered (pinned and charged once) and unregistered, and mapped and unmapped
/// through a 1 TiB dynamic window of 16 MiB TCEs (65,536 entries) and of 64 KiB TCEs (16.7 million entries).
/// Cost must follow runs of TCEs, not TCEs: each operation is expected in milliseconds at most.
/// </summary>
[MemoryDiagnoser]
public class SpaprBenchmarks
{
    private const ulong GiB = 1UL << 30;
    private const ulong TiB = 1UL << 40;

    private Container _container = null!;
    private ulong _ram;
    private ulong _window16M;

    [GlobalSetup(Target = nameof(RegisterUnregister1TiB))]
    public void SetupRegister() => Build(register: false);

    /// <summary>REGISTER_MEMORY then UNREGISTER_MEMORY of 1 TiB of 1 GiB hugetlb pages.</summary>
    [Benchmark]
    public void RegisterUnregister1TiB()
    {
        _container.RegisterMemory(_ram, TiB);
        _container.UnregisterMemory(_ram, TiB);
    }

    [GlobalSetup(Targets = [nameof(MapUnmap1TiB16MTces), nameof(MapUnmap1TiB64KTces)])]
    public void SetupMap() => Build(register: true);

    /// <summary>MAP_DMA then UNMAP_DMA of the whole registered 1 TiB through the 16 MiB-TCE window.</summary>
    [Benchmark]
    public void MapUnmap1TiB16MTces()
    {
        _container.MapDma(_window16M, _ram, TiB);
        _container.UnmapDma(_window16M, TiB);
    }

    /// <summary>The same through a window of 64 KiB TCEs: 16.7 million entries, as runs.</summary>
    [Benchmark]
    public void MapUnmap1TiB64KTces()
    {
        _container.MapDma(0, _ram, TiB);
        _container.UnmapDma(0, TiB);
    }

    private void Build(bool register)
    {
        var host = new SimulatedHost(TiB + (4 * GiB), 16, FrameLayout.Contiguous, IommuHardwareProfile.SpaprTce, KernelSettings.Default);
        host.RegisterSpapr();
        if (host.AddPciDevice("gpu", PciAddress.Parse("0000:01:00.0"), [new PciBarRequest(0, 16UL << 20)], DriverBinding.Vfio, 1) is string error)
        {
            throw new InvalidOperationException(error);
        }
        host.Seal();
        ISyscallSurface sys = host.Spawn("qemu", ulong.MaxValue, capIpcLock: true).Syscalls;
        _container = Container.Open(sys);
        var group = Group.Open(sys, 1);
        group.SetContainer(_container);
        _container.SetIommu(VfioExtension.SpaprTceV2Iommu);
        long ram = sys.Mmap(0, TiB, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge1GiB | MmapFlags.Populate, -1, 0);
        if (ram < 0)
        {
            throw new InvalidOperationException($"mmap: {ErrnoExtensions.FromReturn(ram)}");
        }
        _ram = (ulong)ram;
        if (register)
        {
            _container.RegisterMemory(_ram, TiB);
            _container.RemoveWindow(0);
            if (_container.CreateWindow(16, TiB, levels: 2) != 0)
            {
                throw new InvalidOperationException("the 64 KiB window is not at 0");
            }
            _window16M = _container.CreateWindow(24, TiB, levels: 1);
        }
    }
}
