using BenchmarkDotNet.Attributes;
using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Bench;

/// <summary>
/// The 4 KiB MAP_DMA+UNMAP_DMA pair among 65,535 live mappings (through the syscall surface: pin, charge,
/// IOPTE, unpin) next to its C peer in the same run: BSD <c>tree.h</c>'s red-black insert+find+remove over
/// the same IOVA keys (the kernel keeps its vfio_dma entries in such a tree). The Ratio column is the model's
/// pair over the C tree's work (issue 16: the pair ≤ 250 ns).
/// <see cref="ModelMapUnmap4KiB"/> maps and unmaps the same probe IOVA every time, so the shortcuts that remember the
/// last operation (the IOPTE run map's finger, the DMA tree's last-linked lookup and its link into the gap the last
/// unlink left) always hit; <see cref="ModelMapUnmap4KiBMoving"/> does the pair at the next of 4,096 gaps spread over
/// the tree in a scrambled order, so the MAP's two descents miss both them and the caches. User CPU per pair
/// (<c>--pair-loop 2000000 [moving]</c>, six alternating runs, minima, load 12-15 on 2 cores, docs/benchmarks.md
/// 2026-12-07 pair7): same IOVA ~680 ns, moving ~1,690 ns (before the shortcuts, ff21fbf: ~780 and ~1,880): they cost
/// nothing measurable when they miss; the moving pair is the MAP's DMA-tree descent (~45 % of it) and IOPTE descent (~23 %).
/// </summary>
[MemoryDiagnoser]
public class PairPeerBenchmarks
{
    private const ulong Base = 0x1_0000_0000;
    private const ulong Stride = 8192;
    private const int Live = 65535;
    private const ulong Probe = Base + 0x1000 + (32768 * Stride);

    // The moving row's gaps: every 16th of the 65,535 gaps between mappings (4,096, spread over the whole IOVA range),
    // visited in a fixed scrambled order, each with its own page; set up once, nothing allocated per pair.
    private const int Moving = 4096;

    private Type1Rig _rig = null!;
    private ulong _vaddr;
    private ulong[] _movingIova = null!;
    private ulong[] _movingVaddr = null!;
    private int _movingNext;
    private NativeTreePeer _peer = null!;

    [GlobalSetup]
    public void Setup()
    {
        _peer = NativeTreePeer.Build();
        _peer.Setup(Base, Stride, 4096, Live);
        if (!_peer.InsertRemove(Probe, 4096))
        {
            throw new InvalidOperationException("the C peer did not insert, find and remove the probe");
        }
        _rig = new Type1Rig(2UL << 30, FrameLayout.Contiguous, dmaEntryLimit: Live + 1);
        ulong ram = _rig.Mmap((Live + 1 + Moving) * 4096UL, MmapFlags.Populate);
        for (ulong i = 0; i < Live; i++)
        {
            _rig.MapOrThrow(Base + (i * Stride), ram + (i * 4096), 4096);
        }
        _vaddr = ram + (Live * 4096UL);
        _movingIova = new ulong[Moving];
        _movingVaddr = new ulong[Moving];
        var order = new Random(16);
        int[] gaps = Enumerable.Range(0, Moving).ToArray();
        order.Shuffle(gaps);
        for (int k = 0; k < Moving; k++)
        {
            _movingIova[k] = Base + 0x1000 + ((ulong)gaps[k] * 16 * Stride);
            _movingVaddr[k] = ram + ((Live + 1 + (ulong)k) * 4096);
        }
    }

    /// <summary>The rig (for the cost ladder, <see cref="PairLadder"/>).</summary>
    internal Type1Rig Rig => _rig;

    /// <summary>The probe mapping's vaddr.</summary>
    internal ulong ProbeVaddr => _vaddr;

    [GlobalCleanup]
    public void Cleanup() => _peer.Dispose();

    /// <summary>BSD tree.h (libbsd-dev): RB_INSERT, RB_FIND, RB_REMOVE of one node among 65,535.</summary>
    [Benchmark(Baseline = true)]
    public bool CTreeInsertRemove() => _peer.InsertRemove(Probe, 4096);

    /// <summary>The model: one 4 KiB MAP_DMA and its UNMAP_DMA among 65,535 mappings.</summary>
    [Benchmark]
    public void ModelMapUnmap4KiB()
    {
        _rig.MapOrThrow(Probe, _vaddr, 4096);
        _rig.UnmapOrThrow(Probe, 4096);
    }

    /// <summary>The same pair at a different gap each time (the next of 4,096 spread over the IOVA range, in a
    /// scrambled order): what a pair costs when it does not repeat the last one.</summary>
    [Benchmark]
    public void ModelMapUnmap4KiBMoving()
    {
        int k = _movingNext;
        _movingNext = (k + 1) & (Moving - 1);
        ulong iova = _movingIova[k];
        _rig.MapOrThrow(iova, _movingVaddr[k], 4096);
        _rig.UnmapOrThrow(iova, 4096);
    }
}
