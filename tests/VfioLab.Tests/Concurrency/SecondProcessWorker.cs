using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Type1;
using VfioLab.Vfio;
using VfioLab.Vfio.Pci;

namespace VfioLab.Tests.Concurrency;

/// <summary>
/// A second process, "vmm2" (spawned, not forked from "vmm"), with its own TYPE1v2 container holding the
/// second NIC's group (8, behind the same IOMMU unit as the first NIC): it maps and unmaps four slots of its
/// own memory under a 1 MiB RLIMIT_MEMLOCK (a MAP past the limit answers ENOMEM and changes nothing), mmaps
/// and touches the NIC's BAR, and now and then exits (exit_mm, then the files: the container goes with every
/// mapping) and is spawned again. Two containers, two mm's, one IOMMU unit and the host's frames are shared
/// with "vmm"'s workers. Nobody else touches its state, so every result is exact.
/// </summary>
internal sealed class SecondProcessWorker(StressRig rig) : StressWorker(rig, "vmm2")
{
    public const ulong MemlockLimit = 1 * StressRig.MiB;
    private const int Slots = 4;
    private readonly ulong[] _vaddr = new ulong[Slots];
    private readonly bool[] _mapped = new bool[Slots];
    private Process? _process;
    private VfioIommu? _backend;
    private int _container = -1;
    private int _deviceFd = -1;

    // Its pins count on the host's frames; its mappings and charges are in its own container and mm.
    public override int Mappings => 0;

    public override ulong ChargedPages => 0;

    public override ulong PagePins => MappedPages;

    /// <summary>Frames its memory holds while it lives (populated at spawn, freed at exit).</summary>
    public ulong FramesInUse => _process is null ? 0 : TotalPages;

    /// <summary>Processes that exited and were spawned again.</summary>
    public int Lives { get; private set; }

    private ulong MappedPages
    {
        get
        {
            ulong pages = 0;
            for (int k = 0; k < Slots; k++)
            {
                pages += _mapped[k] ? Size(k) / PageSize : 0;
            }
            return pages;
        }
    }

    private ulong TotalPages
    {
        get
        {
            ulong pages = 0;
            for (int k = 0; k < Slots; k++)
            {
                pages += Size(k) / PageSize;
            }
            return pages;
        }
    }

    public override void Step(Random rng)
    {
        if (_process is null)
        {
            Spawn();
            return;
        }
        int op = rng.Next(16);
        if (op == 0)
        {
            Exit();
        }
        else if (op == 1)
        {
            TouchBar(rng);
        }
        else
        {
            MapOrUnmap(rng.Next(Slots));
        }
    }

    /// <summary>Its container, mm and group against its own state; the host's containers.</summary>
    public override string? CheckQuiescent()
    {
        var problems = new List<string>();
        int containers = Rig.Host.Vfio.Containers.Count;
        if (containers != (_process is null ? 1 : 2))
        {
            problems.Add($"{containers} container(s) on the host, expected {(_process is null ? 1 : 2)}");
        }
        VfioGroup group = Rig.Host.Vfio.FindGroup(StressRig.Nic2Group)!;
        if ((group.Container is not null) != (_process is not null))
        {
            problems.Add($"group {StressRig.Nic2Group} in a container: {group.Container is not null}, process alive {_process is not null}");
        }
        if (_process is null)
        {
            return problems.Count == 0 ? null : string.Join("; ", problems);
        }
        ulong mappings = (ulong)_mapped.Count(m => m);
        if (_backend!.MappingCount != mappings || _backend.DmaAvail != _backend.Behavior.DmaEntryLimit - mappings)
        {
            problems.Add($"vmm2: {_backend.MappingCount} mapping(s), dma_avail {_backend.DmaAvail}; expected {mappings}");
        }
        if (_process.LastMm.LockedVm != MappedPages)
        {
            problems.Add($"vmm2 locked_vm {_process.LastMm.LockedVm}, expected {MappedPages}");
        }
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }

    /// <summary>Teardown: exits the process if it lives.</summary>
    public void Close()
    {
        if (_process is not null)
        {
            Exit();
        }
    }

    private void Spawn()
    {
        Position = "spawn";
        Process p = Rig.Host.Spawn("vmm2", MemlockLimit, capIpcLock: false);
        ISyscallSurface sys = p.Syscalls;
        _container = sys.Open("/dev/vfio/vfio");
        int group = sys.Open($"/dev/vfio/{StressRig.Nic2Group}");
        Expect(_container >= 0 && group >= 0, $"vmm2 open: container {E(_container)}, group {E(group)}");
        long set = StressRig.SetContainer(sys, group, _container);
        long iommu = sys.Ioctl(_container, VfioIoctl.SetIommu, VfioExtension.Type1v2Iommu);
        long dev = StressRig.GetDeviceFd(sys, group, StressRig.Nic2);
        Expect(set == 0 && iommu == 0 && dev >= 0, $"vmm2 set container {E(set)}, set iommu {E(iommu)}, device fd {E(dev)}");
        _deviceFd = (int)dev;
        for (int k = 0; k < Slots; k++)
        {
            long a = sys.Mmap(0, Size(k), MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate, -1, 0);
            Expect(a > 0, $"vmm2 mmap slot {k}: {E(a)}");
            _vaddr[k] = (ulong)a;
        }
        _backend = StressRig.BackendOf(p, _container);
        Expect(_backend is not null, "vmm2: no type1 state behind its container");
        _process = p;
    }

    private void Exit()
    {
        Process p = _process!;
        ulong charged = MappedPages;
        Position = $"exit with {charged} page(s) mapped";
        p.Exit();
        // exit_mm runs before the files close: the container's unpinning finds the mm dead and leaves
        // locked_vm alone (vfio_lock_acct's mmget_not_zero fails), as Linux.
        Expect(p.LastMm.LockedVm == charged, $"vmm2 locked_vm {p.LastMm.LockedVm} after exit, expected {charged} left uncharged");
        Expect(Rig.Host.Vfio.FindGroup(StressRig.Nic2Group)!.Container is null, "group 8 still in a container after exit");
        Expect(Rig.Host.Devices["nic2"].Vfio!.OpenCount == 0, "nic2 still open after exit");
        Array.Clear(_mapped);
        (_process, _backend, _container, _deviceFd) = (null, null, -1, -1);
        Lives++;
    }

    private void TouchBar(Random rng)
    {
        ISyscallSurface sys = _process!.Syscalls;
        Position = "vmm2 bar";
        long m = sys.Mmap(0, StressRig.BarMapSize, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared, _deviceFd, VfioPci.IndexToOffset(0u));
        Expect(m > 0, $"vmm2 mmap bar: {E(m)}");
        ulong at = (ulong)m + ((ulong)rng.Next((int)(StressRig.BarMapSize / 4)) * 4);
        byte[] b = BitConverter.GetBytes((uint)at);
        long w = sys.WriteMemory(at, b);
        long r = sys.ReadMemory(at, b);
        int u = sys.Munmap((ulong)m, StressRig.BarMapSize);
        Expect(w == 0 && r == 0 && u == 0, $"vmm2 bar write {E(w)}, read {E(r)}, munmap {E(u)}");
    }

    private void MapOrUnmap(int k)
    {
        ISyscallSurface sys = _process!.Syscalls;
        ulong iova = StressRig.GiB + ((ulong)k * StressRig.MiB);
        if (_mapped[k])
        {
            Position = $"vmm2 unmap slot {k}";
            (long ret, ulong size) = UserIoctls.Unmap(sys, _container, iova, Size(k));
            Expect(ret == 0 && size == Size(k), $"{Position}: {E(ret)}, size 0x{size:x}");
            _mapped[k] = false;
            return;
        }
        // vfio_lock_acct refuses a charge past RLIMIT_MEMLOCK (no CAP_IPC_LOCK): ENOMEM, nothing mapped.
        bool fits = MappedPages + (Size(k) / PageSize) <= MemlockLimit / PageSize;
        Position = $"vmm2 map slot {k} (fits {fits})";
        long r = UserIoctls.Map(sys, _container, iova, _vaddr[k], Size(k));
        Expect(r == (fits ? 0 : Errno.ENOMEM.AsReturn()), $"{Position}: {E(r)}");
        _mapped[k] = r == 0;
    }

    private static ulong Size(int k) => (ulong)(k + 1) * 128 * StressRig.KiB;
}
