namespace VfioLab.Tests.Concurrency;

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
