using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Tests.Concurrency;

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
