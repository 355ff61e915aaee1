using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Tests.Concurrency;

/// <summary>
/// One thread of the stress: a seeded sequence of operations on state it alone owns (its IOVA ranges,
/// its memory, its pins, dirty tracking, the GPU's resets), so the result of every call is known in
/// advance whatever the other threads do, and what it expects to be mapped, charged and pinned is exact.
/// </summary>
internal abstract class StressWorker(StressRig rig, string name)
{
    protected StressRig Rig { get; } = rig;

    public string Name { get; } = name;

    /// <summary>What the thread is doing now, for the watchdog's report.</summary>
    public volatile string Position = "not started";

    /// <summary>Mappings this worker holds now.</summary>
    public abstract int Mappings { get; }

    /// <summary>Pages this worker's mappings and pins charge to <c>locked_vm</c>.</summary>
    public abstract ulong ChargedPages { get; }

    /// <summary>Page pins this worker's mappings and external pins hold (with multiplicity).</summary>
    public abstract ulong PagePins { get; }

    /// <summary>One operation, chosen by <paramref name="rng"/>; throws <see cref="StressFailure"/> when a
    /// result differs from what this worker's own state predicts.</summary>
    public abstract void Step(Random rng);

    /// <summary>At a barrier (no call in flight, every forked child gone): what differs from this worker's
    /// own state beyond the shared sums the test reconciles, or null.</summary>
    public virtual string? CheckQuiescent() => null;

    protected ISyscallSurface Sys => Rig.Sys;

    protected ulong PageSize => Rig.PageSize;

    protected static void Expect(bool condition, string what)
    {
        if (!condition)
        {
            throw new StressFailure(what);
        }
    }

    protected static string E(long ret) => ret >= 0 ? ret.ToString(System.Globalization.CultureInfo.InvariantCulture) : ErrnoExtensions.FromReturn(ret).ToString();
}

/// <summary>A result a worker did not predict.</summary>
internal sealed class StressFailure(string message) : Exception(message);

/// <summary>MAP and UNMAP of eight slots of its own (64 KiB to 512 KiB, own memory, own IOVAs).</summary>
internal sealed class MapWorker : StressWorker
{
    private const int Slots = 8;
    private readonly ulong[] _vaddr = new ulong[Slots];
    private readonly bool[] _mapped = new bool[Slots];
    private readonly ulong _iovaBase;

    public MapWorker(StressRig rig, int index) : base(rig, $"map{index}")
    {
        _iovaBase = (ulong)(1 + index) * StressRig.GiB;
        for (int k = 0; k < Slots; k++)
        {
            _vaddr[k] = rig.Anonymous(Size(k));
        }
    }

    public override int Mappings => _mapped.Count(m => m);

    public override ulong ChargedPages => PagePins;

    public override ulong PagePins
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

    /// <summary>A private address of this worker's memory, for a forked child to write.</summary>
    public ulong AnyVaddr => _vaddr[0];

    public override void Step(Random rng)
    {
        int k = rng.Next(Slots);
        ulong iova = _iovaBase + ((ulong)k * StressRig.MiB);
        if (_mapped[k])
        {
            Position = $"unmap slot {k}";
            (long ret, ulong size) = UserIoctls.Unmap(Sys, Rig.Container, iova, Size(k));
            Expect(ret == 0 && size == Size(k), $"unmap slot {k}: {E(ret)}, size 0x{size:x}");
            _mapped[k] = false;
        }
        else
        {
            Position = $"map slot {k}";
            long ret = UserIoctls.Map(Sys, Rig.Container, iova, _vaddr[k], Size(k));
            Expect(ret == 0, $"map slot {k}: {E(ret)}");
            _mapped[k] = true;
        }
    }

    private static ulong Size(int k) => (ulong)(k + 1) * 64 * StressRig.KiB;
}

/// <summary>Dirty tracking (START/STOP, which only it issues), GET_DIRTY_BITMAP of a mapping it keeps, and
/// UNMAP with the dirty bitmap of a second mapping it maps again.</summary>
internal sealed class DirtyWorker : StressWorker
{
    private const ulong KeptIova = 4 * StressRig.GiB;
    private const ulong CycledIova = KeptIova + StressRig.MiB;
    private const ulong Size = 256 * StressRig.KiB;
    private readonly ulong _kept;
    private readonly ulong _cycled;
    private readonly ulong _bitmap;
    private bool _tracking;
    private bool _cycledMapped;

    public DirtyWorker(StressRig rig) : base(rig, "dirty")
    {
        _kept = rig.Anonymous(Size);
        _cycled = rig.Anonymous(Size);
        _bitmap = rig.Anonymous(rig.PageSize);
        Expect(UserIoctls.Map(rig.Sys, rig.Container, KeptIova, _kept, Size) == 0, "initial map");
    }

    public override int Mappings => _cycledMapped ? 2 : 1;

    public override ulong ChargedPages => PagePins;

    public override ulong PagePins => (ulong)Mappings * (Size / PageSize);

    /// <summary>Turns tracking off (teardown).</summary>
    public bool Tracking => _tracking;

    public override void Step(Random rng)
    {
        ulong bitmapBytes = Size / PageSize / 8;
        switch (rng.Next(4))
        {
            case 0:
                Position = _tracking ? "dirty stop" : "dirty start";
                long r = UserIoctls.Dirty(Sys, Rig.Container, _tracking ? DirtyPagesFlags.Stop : DirtyPagesFlags.Start);
                Expect(r == 0, $"{Position}: {E(r)}");
                _tracking = !_tracking;
                break;
            case 1:
                Position = "get dirty bitmap";
                long g = UserIoctls.GetBitmap(Sys, Rig.Container, KeptIova, Size, PageSize, _bitmap, bitmapBytes);
                Expect(g == (_tracking ? 0 : Errno.EINVAL.AsReturn()), $"get bitmap (tracking {_tracking}): {E(g)}");
                break;
            case 2 when _cycledMapped:
                Position = _tracking ? "unmap with bitmap" : "unmap";
                (long u, ulong size) = _tracking
                    ? UserIoctls.UnmapWithBitmap(Sys, Rig.Container, CycledIova, Size, PageSize, _bitmap, bitmapBytes)
                    : UserIoctls.Unmap(Sys, Rig.Container, CycledIova, Size);
                Expect(u == 0 && size == Size, $"{Position}: {E(u)} size 0x{size:x}");
                _cycledMapped = false;
                break;
            case 2:
                Position = "map cycled";
                long m = UserIoctls.Map(Sys, Rig.Container, CycledIova, _cycled, Size);
                Expect(m == 0, $"map cycled: {E(m)}");
                _cycledMapped = true;
                break;
            default:
                Position = "cpu write";
                ulong at = _kept + ((ulong)rng.Next((int)(Size / 8)) * 8);
                long w = Sys.WriteMemory(at, BitConverter.GetBytes(at));
                Expect(w == 0, $"cpu write: {E(w)}");
                break;
        }
    }
}

/// <summary>The mdev's vendor driver pinning and unpinning pages of a mapping it owns, reading and writing
/// through <c>vfio_dma_rw</c>, and unmapping that mapping while pages are pinned (the unmap notification
/// makes the driver unpin them) and mapping it again.</summary>
internal sealed class MdevWorker : StressWorker
{
    private const ulong Iova = 6 * StressRig.GiB;
    private const ulong Size = 1 * StressRig.MiB;
    private readonly int[] _pins;
    private readonly ulong _vaddr;
    private bool _mapped = true;

    public MdevWorker(StressRig rig) : base(rig, "mdev")
    {
        _vaddr = rig.Anonymous(Size);
        _pins = new int[Size / rig.PageSize];
        Expect(UserIoctls.Map(rig.Sys, rig.Container, Iova, _vaddr, Size) == 0, "initial map");
    }

    public override int Mappings => _mapped ? 1 : 0;

    // The container has an IOMMU domain (the GPU's): external pins charge nothing.
    public override ulong ChargedPages => _mapped ? Size / PageSize : 0;

    // MAP pins each page once; an external pin pins its page once more however many times it is counted.
    public override ulong PagePins => ChargedPages + (ulong)_pins.Count(c => c > 0);

    /// <summary>External pins the driver should hold, with multiplicity.</summary>
    public ulong DriverPins => (ulong)_pins.Sum();

    public override void Step(Random rng)
    {
        int pages = _pins.Length;
        int op = rng.Next(10);
        if (op <= 3)
        {
            int p = rng.Next(pages);
            int n = Math.Min(1 + rng.Next(4), pages - p);
            Position = $"pin {n} at page {p}";
            long r = Rig.Driver.PinPages(Rig.Mdev, Iova + ((ulong)p * PageSize), n, IommuProt.Read | IommuProt.Write, new Pfn[n]);
            Expect(r == (_mapped ? n : Errno.EINVAL.AsReturn()), $"{Position} (mapped {_mapped}): {E(r)}");
            if (r > 0)
            {
                for (int i = p; i < p + n; i++)
                {
                    _pins[i]++;
                }
            }
        }
        else if (op <= 6)
        {
            int start = rng.Next(pages);
            int p = Array.FindIndex(_pins, start, c => c > 0);
            if (p < 0)
            {
                return;
            }
            Position = $"unpin page {p}";
            bool ok = Rig.Driver.UnpinPages(Rig.Mdev, Iova + ((ulong)p * PageSize), 1);
            Expect(ok, Position);
            _pins[p]--;
        }
        else if (op <= 8)
        {
            ulong offset = (ulong)rng.Next((int)(Size - 16));
            byte[] data = new byte[16];
            rng.NextBytes(data);
            Position = $"dma_rw at +0x{offset:x}";
            Errno w = MdevVendorDriver.DmaRw(Rig.Mdev, Iova + offset, data, write: true, Rig.Process);
            Expect(w == (_mapped ? Errno.None : Errno.EINVAL), $"{Position} write (mapped {_mapped}): {w}");
            if (_mapped)
            {
                byte[] back = new byte[16];
                Errno r = MdevVendorDriver.DmaRw(Rig.Mdev, Iova + offset, back, write: false, Rig.Process);
                Expect(r == Errno.None && back.AsSpan().SequenceEqual(data), $"{Position} read back: {r}");
            }
        }
        else if (_mapped)
        {
            Position = $"unmap with {DriverPins} pins";
            (long r, ulong size) = UserIoctls.Unmap(Sys, Rig.Container, Iova, Size);
            Expect(r == 0 && size == Size, $"{Position}: {E(r)} size 0x{size:x}");
            Array.Clear(_pins);
            _mapped = false;
        }
        else
        {
            Position = "map again";
            long r = UserIoctls.Map(Sys, Rig.Container, Iova, _vaddr, Size);
            Expect(r == 0, $"map again: {E(r)}");
            _mapped = true;
        }
    }
}

/// <summary>Forks the process (its pinned pages are copied for the child at fork), lets the child write
/// memory, and exits the child: nothing of the child may stay charged or pinned. The child inherits every
/// fd and mapping of "vmm", so a file another worker closes lives on until the child exits:
/// <see cref="Started"/> and <see cref="Exited"/> let that worker tell whether a child may still hold it.</summary>
internal sealed class ForkWorker(StressRig rig, ulong privateVaddr) : StressWorker(rig, "fork")
{
    private long _started;
    private long _exited;

    public override int Mappings => 0;

    public override ulong ChargedPages => 0;

    public override ulong PagePins => 0;

    /// <summary>Forks begun: counted before the fd table is copied.</summary>
    public long Started => Interlocked.Read(ref _started);

    /// <summary>Children gone: counted after their exit released everything they held. Children exit in
    /// the order they were forked (one thread forks), so every child numbered below this is gone.</summary>
    public long Exited => Interlocked.Read(ref _exited);

    public override void Step(Random rng)
    {
        Position = "fork";
        Interlocked.Increment(ref _started);
        Process? child = null;
        try
        {
            Errno e = Rig.Process.TryFork(out child);
            Expect(e == Errno.None && child is not null, $"fork: {e}");
            Position = "child writes";
            long w = child!.Syscalls.WriteMemory(privateVaddr + ((ulong)rng.Next(16) * 8), [1, 2, 3, 4, 5, 6, 7, 8]);
            Expect(w == 0, $"child write: {E(w)}");
            Position = "child exits";
            child.Exit();
            Expect(child.LastMm.LockedVm == 0, $"child locked_vm {child.LastMm.LockedVm} after exit");
        }
        finally
        {
            // A failed step still ends its child, so no worker waits for a file the child holds.
            child?.Exit();
            Interlocked.Increment(ref _exited);
        }
    }
}

/// <summary>The GPU's resets: VFIO_DEVICE_RESET, memory decode off and on through config space, and the
/// slot's hot reset (which try-locks each function's memory_lock: EBUSY under contention, as Linux).</summary>
internal sealed class DeviceWorker(StressRig rig) : StressWorker(rig, "device")
{
    public override int Mappings => 0;

    public override ulong ChargedPages => 0;

    public override ulong PagePins => 0;

    /// <summary>Hot resets refused with EBUSY because another thread held a memory_lock.</summary>
    public int HotResetBusy { get; private set; }

    public override void Step(Random rng)
    {
        switch (rng.Next(3))
        {
            case 0:
                Position = "device reset";
                long r = Sys.Ioctl(Rig.GpuFd, VfioIoctl.DeviceReset, 0);
                Expect(r == 0, $"reset: {E(r)}");
                break;
            case 1:
                Position = "memory off";
                long off = Rig.SetGpuMemory(false);
                Position = "memory on";
                long on = Rig.SetGpuMemory(true);
                Expect(off == 2 && on == 2, $"memory off/on: {E(off)}/{E(on)}");
                break;
            default:
                Position = "hot reset";
                long h = Rig.HotReset();
                Expect(h == 0 || h == Errno.EBUSY.AsReturn(), $"hot reset: {E(h)}");
                HotResetBusy += h == 0 ? 0 : 1;
                break;
        }
    }
}

/// <summary>CPU reads and writes of the GPU's BAR mmap: they fault under the mmap lock and memory_lock,
/// racing with the device worker's zaps; SIGBUS (EIO) while decode is off, as Linux.</summary>
internal sealed class BarWorker(StressRig rig) : StressWorker(rig, "bar")
{
    public override int Mappings => 0;

    public override ulong ChargedPages => 0;

    public override ulong PagePins => 0;

    public override void Step(Random rng)
    {
        ulong at = Rig.BarVaddr + ((ulong)rng.Next((int)(StressRig.BarMapSize / 4)) * 4);
        byte[] b = new byte[4];
        bool write = rng.Next(2) == 0;
        Position = $"bar {(write ? "write" : "read")} 0x{at:x}";
        long r = write ? Sys.WriteMemory(at, b) : Sys.ReadMemory(at, b);
        Expect(r == 0 || r == Errno.EIO.AsReturn(), $"{Position}: {E(r)}");
    }
}
