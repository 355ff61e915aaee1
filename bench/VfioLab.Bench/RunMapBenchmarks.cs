using BenchmarkDotNet.Attributes;
using VfioLab.Collections;

namespace VfioLab.Bench;

/// <summary>The interval map under the load of a DMA tree: 65,535 live extents, then one insert and
/// one removal per operation (the cost a 4 KiB map/unmap pair pays in the tree).</summary>
[MemoryDiagnoser]
public class RunMapBenchmarks
{
    private RunMap<Tag> _map = null!;
    private ulong _next;

    [GlobalSetup]
    public void Setup()
    {
        _map = new RunMap<Tag>();
        for (ulong i = 0; i < 65535; i++)
        {
            // Every other page, so neighbours never merge: 65,535 separate runs.
            _map.Set(i * 2, i * 2, new Tag(i));
        }
        _next = 65535 * 2 + 2;
    }

    [Benchmark]
    public bool SetThenRemove()
    {
        ulong key = _next;
        _map.Set(key, key, new Tag(key));
        bool found = _map.TryGet(key, out _);
        _map.Remove(key, key);
        return found;
    }

    [Benchmark]
    public bool LookupAmong65535() => _map.TryGet(65535, out _);

    /// <summary>A constant value per run.</summary>
    public readonly record struct Tag(ulong Id) : IRunValue<Tag>
    {
        public Tag Advance(ulong offset) => this;
    }
}
