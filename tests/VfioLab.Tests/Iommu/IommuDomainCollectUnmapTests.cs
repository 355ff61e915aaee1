using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using static VfioLab.Tests.Iommu.IommuTestKit;

namespace VfioLab.Tests.Iommu;

/// <summary>
/// IommuDomain.CollectUnmapSync (type1's streamed unmap of one domain: collect up to a bound of runs, unmap them, flush)
/// against what it stands for, on a twin domain: MappedRuns of the range, the first `max` of them, each stretch of
/// back-to-back runs unmapped with iommu_unmap_fast, then iommu_iotlb_sync. Tables of mixed page sizes, runs that merged
/// across maps, ranges that start or end inside an IOPTE and holes: the same runs collected, the same table and counts
/// after, nothing pending. Some ranges are exactly one run (the one-descent path of a 4 KiB unmap).
/// </summary>
public sealed class IommuDomainCollectUnmapTests
{
    [Theory]
    [InlineData(0xc011_0001UL, K4)]
    [InlineData(0xc011_0002UL, K4 | M2)]
    [InlineData(0xc011_0003UL, K4 | K64 | M2 | G1)]
    [InlineData(0xc011_0004UL, K64)]
    public void CollectUnmapSync_RandomTablesAndRanges_EndsAsCollectThenUnmapFastThenSync(ulong seed, ulong bitmap)
    {
        IommuDomain batched = Domain(bitmap);
        IommuDomain stepwise = Domain(bitmap);
        // The streamed fast lane (TryUnmapSyncStreamed), falling back to CollectUnmapSync where it declines.
        IommuDomain streamed = Domain(bitmap);
        int streamedTaken = 0;
        int streamedDeclined = 0;
        ulong min = PageSizeBitmap.MinPageSize(bitmap);
        var rng = new SplitMix64(seed);
        for (int round = 0; round < 60; round++)
        {
            string where = $"seed 0x{seed:x} round {round}";
            // Fill: scattered chunks at consecutive IOVAs (some physically contiguous with the one before, so runs merge),
            // now and then a 2 MiB-aligned stretch that takes larger IOPTEs, with holes between groups.
            ulong iova = (rng.Next() % 64) * M2;
            for (int i = 0; i < 200; i++)
            {
                ulong size = rng.Next() % 10 == 0 ? M2 * (1 + (rng.Next() % 3)) : min * (1 + (rng.Next() % 3));
                ulong phys = rng.Next() % 4 == 0 && i > 0 ? stepwise.IovaToPhys(new Iova(iova - min)).Value + min
                    : size >= M2 ? ((1 + (rng.Next() % 100)) * G1) + (iova & (M2 - 1)) : (1 + (rng.Next() % 1_000_000)) * min;
                if (rng.Next() % 15 == 0)
                {
                    iova += min * (1 + (rng.Next() % 4));
                }
                if (stepwise.Map(new Iova(iova), new PhysAddr(phys), size, IommuProt.ReadWrite) == VfioLab.Abi.Errno.None)
                {
                    Assert.Equal(VfioLab.Abi.Errno.None, batched.Map(new Iova(iova), new PhysAddr(phys), size, IommuProt.ReadWrite));
                    Assert.Equal(VfioLab.Abi.Errno.None, streamed.Map(new Iova(iova), new PhysAddr(phys), size, IommuProt.ReadWrite));
                }
                iova += size;
            }
            Assert.Equal(stepwise.MappedRuns(), batched.MappedRuns());
            // Unmap a few ranges, at run starts, inside runs (even inside an IOPTE) and over holes, with small and large bounds.
            for (int u = 0; u < 6; u++)
            {
                IReadOnlyList<MappedRun> live = stepwise.MappedRuns();
                if (live.Count == 0)
                {
                    break;
                }
                MappedRun at = live[(int)(rng.Next() % (ulong)live.Count)];
                ulong start = rng.Next() % 2 == 0 ? at.Iova.Start : at.Iova.Start + ((rng.Next() % Math.Max(1, at.Iova.Size / min)) * min);
                // Now and then exactly one whole run (a 4 KiB unmap: CollectUnmapSync's one-descent path).
                ulong last = rng.Next() % 4 == 0 && start == at.Iova.Start ? at.Iova.Last : start + ((1 + (rng.Next() % 600)) * min) - 1;
                var range = new ByteRange(start, last);
                int max = rng.Next() % 3 == 0 ? 1 + (int)(rng.Next() % 8) : int.MaxValue;

                var got = new List<MappedRun> { new(new ByteRange(1, 1), new PhysAddr(0), K4, IommuProt.Read) };
                batched.CollectUnmapSync(range, got, max);
                got.RemoveAt(0);

                var sink = new Sink([]);
                IReadOnlyList<MappedRun> streamedBefore = streamed.MappedRuns();
                long syncsBefore = streamed.IotlbSyncCount;
                if (streamed.TryUnmapSyncStreamed(range, max, ref sink, out int taken, out ulong lastIova))
                {
                    streamedTaken++;
                    Assert.Equal(got.Count, taken);
                    Assert.Equal(got.Select(r => (r.Iova.Start, r.Iova.Last, r.Phys)), sink.Runs);
                    Assert.Equal(got.Count == 0 ? 0 : got[^1].Iova.Last, lastIova);
                }
                else
                {
                    streamedDeclined++;
                    Assert.Empty(sink.Runs);
                    Assert.Equal(streamedBefore, streamed.MappedRuns());
                    Assert.Equal(syncsBefore, streamed.IotlbSyncCount);
                    var fallback = new List<MappedRun>();
                    streamed.CollectUnmapSync(range, fallback, max);
                    Assert.Equal(got, fallback);
                }

                var want = stepwise.MappedRuns(range).Take(max).ToList();
                int k = 0;
                while (k < want.Count)
                {
                    ByteRange stretch = want[k].Iova;
                    k++;
                    while (k < want.Count && stretch.IsFollowedBy(want[k].Iova))
                    {
                        stretch = stretch with { Last = want[k].Iova.Last };
                        k++;
                    }
                    stepwise.UnmapDeferred(new Iova(stretch.Start), stretch.Size);
                }
                if (want.Count > 0)
                {
                    stepwise.IotlbSync();
                }

                Assert.True(want.SequenceEqual(got), $"{where} unmap {u} {range} max {max}: collected {got.Count} runs, expected {want.Count}");
                Assert.Equal(stepwise.MappedRuns(), batched.MappedRuns());
                Assert.Equal(stepwise.EntryCounts(), batched.EntryCounts());
                Assert.Equal(stepwise.TotalEntries, batched.TotalEntries);
                Assert.Equal(stepwise.IotlbSyncCount, batched.IotlbSyncCount);
                Assert.Empty(batched.PendingInvalidations());
                AssertClean(batched);
                Assert.Equal(batched.MappedRuns(), streamed.MappedRuns());
                Assert.Equal(batched.EntryCounts(), streamed.EntryCounts());
                Assert.Equal(batched.TotalEntries, streamed.TotalEntries);
                Assert.Equal(batched.IotlbSyncCount, streamed.IotlbSyncCount);
                Assert.Empty(streamed.PendingInvalidations());
                AssertClean(streamed);
            }
        }
        Assert.True(streamedTaken > 50 && streamedDeclined > 5, $"fast lane taken {streamedTaken} times, declined {streamedDeclined}: both must be exercised");
    }

    private readonly record struct Sink(List<(ulong, ulong, PhysAddr)> Runs) : IUnmappedRunSink
    {
        public void Take(ulong iovaStart, ulong iovaLast, PhysAddr phys) => Runs.Add((iovaStart, iovaLast, phys));
    }
}
