using BenchmarkDotNet.Attributes;
using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Bench;

/// <summary>
/// MAP_POPULATE of private anonymous memory on a fresh host whose frames are scattered in runs of 1 or 16 pages (issue
/// 16): the allocator's slot permutation, the free and reference maps and the page-table fill, what the shattered-64g
/// scenario spends before its MAP_DMA. The host has 1/8 more RAM than is populated, as that scenario's 72 GiB for 64.
/// Divide the mean by the pages (262,144 per GiB) for the cost per page.
/// </summary>
[MemoryDiagnoser]
[InvocationCount(1)]
public class PopulateBenchmarks
{
    private const ulong GiB = 1UL << 30;
    private Machine _machine = null!;
    private AddressSpace _mm = null!;

    /// <summary>GiB populated.</summary>
    [Params(4, 64)]
    public int Gib { get; set; }

    /// <summary>Pages per physically contiguous run of host frames.</summary>
    [Params(1, 16)]
    public int RunPages { get; set; }

    /// <summary>A fresh host each time: the allocator's cursor only moves forward.</summary>
    [IterationSetup]
    public void Setup()
    {
        _machine = new Machine((ulong)Gib * GiB * 9 / 8, 12, FrameLayout.ScatteredRuns((ulong)RunPages, 7));
        _mm = _machine.Spawn("populate").Mm!;
    }

    /// <summary>mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE) of the whole size.</summary>
    [Benchmark]
    public long MmapPopulate()
    {
        long r = _mm.Mmap(0, (ulong)Gib * GiB, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate);
        if (r < 0 || _machine.Memory.FreeFrameCount != (ulong)Gib * GiB / 8 / 4096)
        {
            throw new InvalidOperationException($"populate failed: {r}, {_machine.Memory.FreeFrameCount} frames free");
        }
        return r;
    }
}
