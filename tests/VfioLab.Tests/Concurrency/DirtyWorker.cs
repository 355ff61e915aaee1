using VfioLab.Abi;

namespace VfioLab.Tests.Concurrency;

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
