using BenchmarkDotNet.Attributes;
using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Bench;

/// <summary>
/// MAP_DMA+UNMAP_DMA of 4 GiB (1 M pages) populated on host frames scattered in runs of 1, 2, 4 and 16 pages
/// (issue 16): the cost per 4 KiB page when every extent of the model degenerates to a few pages. Divide the
/// mean by 1,048,576 for the cost per page; the 64 GiB figure of the issue comes from the scenario
/// bench/scenarios/shattered-64g.yaml (whole process) and from <c>--shattered-memory</c>.
/// </summary>
[MemoryDiagnoser]
public class ShatteredBenchmarks
{
    private const ulong GiB = 1UL << 30;
    private Type1Rig _rig = null!;

    /// <summary>Pages per physically contiguous run of host frames.</summary>
    [Params(1, 2, 4, 16)]
    public int RunPages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _rig = new Type1Rig(6 * GiB, FrameLayout.ScatteredRuns((ulong)RunPages, 7), dmaEntryLimit: 65535);
        _rig.Vaddr = _rig.Mmap(4 * GiB, MmapFlags.Populate);
    }

    /// <summary>MAP_DMA and UNMAP_DMA of the 4 GiB.</summary>
    [Benchmark]
    public void MapUnmap4GiB()
    {
        _rig.MapOrThrow(4 * GiB, _rig.Vaddr, 4 * GiB);
        _rig.UnmapOrThrow(4 * GiB, 4 * GiB);
    }
}
