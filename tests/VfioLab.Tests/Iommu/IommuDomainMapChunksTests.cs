using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using static VfioLab.Tests.Iommu.IommuTestKit;

namespace VfioLab.Tests.Iommu;

/// <summary>IommuDomain.MapChunks: one GUP batch's discontiguous chunks at consecutive IOVAs, each an iommu_map of its
/// own (checks, split, all or nothing), stopping at the first that fails with the ones before it left mapped.</summary>
public sealed class IommuDomainMapChunksTests
{
    [Fact]
    public void MapChunks_ThreeScatteredChunks_MapsEachAtConsecutiveIovas()
    {
        IommuDomain d = Domain(K4 | M2);
        ByteRange[] chunks = [ByteRange.FromStartSize(0x9000, K4), ByteRange.FromStartSize(0x3000, 2 * K4), ByteRange.FromStartSize(4 * M2, M2)];

        Assert.Equal(Errno.None, d.MapChunks(new Iova(M2), chunks, IommuProt.ReadWrite, out int mapped));

        Assert.Equal(3, mapped);
        Assert.Equal(new PhysAddr(0x9000), d.IovaToPhys(new Iova(M2)));
        Assert.Equal(new PhysAddr(0x3000), d.IovaToPhys(new Iova(M2 + K4)));
        Assert.Equal(new PhysAddr(0x4000), d.IovaToPhys(new Iova(M2 + (2 * K4))));
        Assert.Equal(new PhysAddr(4 * M2), d.IovaToPhys(new Iova(M2 + (3 * K4))));
        Assert.Equal(3 + (M2 / K4), d.TotalEntries);
        AssertClean(d);
    }

    [Fact]
    public void MapChunks_MiddleChunkMisaligned_ReturnsEINVALWithTheFirstLeftMapped()
    {
        IommuDomain d = Domain(K64);
        ByteRange[] chunks = [ByteRange.FromStartSize(0x10000, K64), ByteRange.FromStartSize(0x21000, K64), ByteRange.FromStartSize(0x40000, K64)];

        Assert.Equal(Errno.EINVAL, d.MapChunks(new Iova(0x100000), chunks, IommuProt.ReadWrite, out int mapped));

        Assert.Equal(1, mapped);
        Assert.Equal(new PhysAddr(0x10000), d.IovaToPhys(new Iova(0x100000)));
        Assert.Equal(1UL, d.TotalEntries);
        Assert.False(d.Translate(new Iova(0x110000), write: false).Ok);
        AssertClean(d);
    }

    [Fact]
    public void MapChunks_FreedDomain_ReturnsENODEVAndMapsNothing()
    {
        IommuDomain d = Domain(K4);
        d.Free();

        Assert.Equal(Errno.ENODEV, d.MapChunks(new Iova(0), [ByteRange.FromStartSize(0x1000, K4)], IommuProt.Read, out int mapped));

        Assert.Equal(0, mapped);
        Assert.True(d.IsEmpty);
    }

    [Theory]
    [InlineData(0x3a9c_0001UL, K4)]
    [InlineData(0x3a9c_0002UL, K4 | K64 | M2)]
    [InlineData(0x3a9c_0003UL, K64)]
    [InlineData(0x3a9c_0004UL, K4 | M2 | G1)]
    public void MapChunks_RandomBatches_EndAsOneMapPerChunk(ulong seed, ulong bitmap)
    {
        // Two domains, the same calls: one takes each batch through MapChunks (its in-order path when the batch's range
        // is free, the per-chunk loop when not), the other one Map per chunk, stopping at the first error. Misaligned
        // chunks, chunks leaving the aperture, ranges already mapped and fault injection at every n-th site call must end
        // with the same errno, chunks mapped, IOPTE runs, counts and fault-site calls.
        ByteRange aperture = new(0, (256 * M2) - 1);
        IommuHardwareProfile profile = IommuHardwareProfile.VtD.WithOverrides(pgsizeBitmap: bitmap, aperture: aperture);
        var batchedFaults = new FaultInjector();
        var singleFaults = new FaultInjector();
        IommuDomain batched = Domain(profile, batchedFaults);
        IommuDomain single = Domain(profile, singleFaults);
        ulong min = PageSizeBitmap.MinPageSize(bitmap);
        var rng = new SplitMix64(seed);
        int errors = 0;
        int batches = 0;
        for (int step = 0; step < 400; step++)
        {
            string where = $"seed 0x{seed:x} step {step}";
            IReadOnlyList<MappedRun> live = single.MappedRuns();
            if (live.Count > 0 && rng.Next() % 3 == 0)
            {
                // Unmap from the start of a mapped run (an unmap stops at the first hole): a few of its IOPTEs or more.
                MappedRun r = live[(int)(rng.Next() % (ulong)live.Count)];
                ulong size = (1 + (rng.Next() % 64)) * min;
                Assert.Equal(single.Unmap(new Iova(r.Iova.Start), size), batched.Unmap(new Iova(r.Iova.Start), size));
                continue;
            }
            int n = 1 + (int)(rng.Next() % 40);
            ulong iova = rng.Next() % 10 == 0 ? aperture.Last + 1 - (min * (ulong)(rng.Next() % 8)) : (rng.Next() % (aperture.Size / min / 2)) * min;
            var chunks = new ByteRange[n];
            ulong next = iova;
            for (int i = 0; i < n; i++)
            {
                ulong kind = rng.Next() % 20;
                ulong size = kind == 0 ? M2 * (1 + (rng.Next() % 2)) : kind == 1 ? min * (1 + (rng.Next() % 40)) : min;
                ulong phys = ((rng.Next() % 100_000) + 1) * min;
                if (kind == 2 && i > 0)
                {
                    phys += 0x800;
                }
                else if (kind == 3)
                {
                    // As aligned as its IOVA modulo 2 MiB, and longer: the split takes small pages up to a 2 MiB
                    // boundary, then larger ones, then small ones (several IOPTE batches, each a fault-site call).
                    phys = ((1 + (rng.Next() % 50)) * G1) + (next & (M2 - 1));
                    size = M2 + (min * (1 + (rng.Next() % 8)));
                }
                chunks[i] = ByteRange.FromStartSize(phys, size);
                next += size;
            }
            long nth = rng.Next() % 3 == 0 ? 1 + (long)(rng.Next() % 12) : 0;
            batchedFaults.Arm(nth, FaultSite.IommuMap);
            singleFaults.Arm(nth, FaultSite.IommuMap);

            Errno got = batched.MapChunks(new Iova(iova), chunks, IommuProt.ReadWrite, out int mapped);

            Errno want = Errno.None;
            int wantMapped = 0;
            ulong cursor = iova;
            foreach (ByteRange c in chunks)
            {
                want = single.Map(new Iova(cursor), new PhysAddr(c.Start), c.Size, IommuProt.ReadWrite);
                if (want != Errno.None)
                {
                    break;
                }
                wantMapped++;
                cursor += c.Size;
            }
            batches++;
            errors += want != Errno.None ? 1 : 0;
            Assert.True(want == got, $"{where}: MapChunks returned {got}, one Map per chunk {want}");
            Assert.True(wantMapped == mapped, $"{where}: {mapped} chunks mapped, one Map per chunk {wantMapped}");
            Assert.True(singleFaults.Calls == batchedFaults.Calls && singleFaults.Fired == batchedFaults.Fired,
                $"{where}: {batchedFaults.Calls} fault-site calls (fired {batchedFaults.Fired}), one Map per chunk {singleFaults.Calls} ({singleFaults.Fired})");
            Assert.Equal(single.MappedRuns(), batched.MappedRuns());
            Assert.Equal(single.EntryCounts(), batched.EntryCounts());
            Assert.Equal(single.TotalEntries, batched.TotalEntries);
            AssertClean(batched);
        }
        batchedFaults.Arm(0);
        Assert.True(errors > 20 && errors < batches - 20, $"{errors} of {batches} batches failed: the mix does not exercise both outcomes");
    }

    [Theory]
    [InlineData(0x3a9c_0011UL, true)]
    [InlineData(0x3a9c_0012UL, false)]
    public void MapChunks_WholeLeavesOfOnePageChunks_EndAsOneMapPerChunk(ulong seed, bool writable)
    {
        IommuProt prot = writable ? IommuProt.ReadWrite : IommuProt.Read;
        // A MAP of memory shattered into pages: batches of hundreds of 1-page chunks at rising IOVAs, so whole leaves of
        // the table are written at once from the chunks (TryPackUnits), with a chunk here and there physically continuing
        // the one before it (the runs join: the leaf goes run by run) or after a freed range (the kept leaves are taken),
        // against one Map per chunk.
        ByteRange aperture = new(0, (1UL << 40) - 1);
        IommuHardwareProfile profile = IommuHardwareProfile.VtD.WithOverrides(pgsizeBitmap: K4, aperture: aperture);
        IommuDomain batched = Domain(profile, new FaultInjector());
        IommuDomain single = Domain(profile, new FaultInjector());
        var rng = new SplitMix64(seed);
        ulong iova = 0;
        int joins = 0;
        for (int step = 0; step < 24; step++)
        {
            if (step % 6 == 5)
            {
                // UNMAP all: the table's emptied leaves are kept for the next batches.
                Assert.Equal(single.Unmap(new Iova(0), iova), batched.Unmap(new Iova(0), iova));
                iova = 0;
                continue;
            }
            int n = 64 + (int)(rng.Next() % 400);
            var chunks = new ByteRange[n];
            for (int i = 0; i < n; i++)
            {
                bool join = i > 0 && rng.Next() % 97 == 0;
                joins += join ? 1 : 0;
                ulong phys = join ? chunks[i - 1].Start + K4 : ((rng.Next() % 1_000_000) + 1) * K4;
                chunks[i] = ByteRange.FromStartSize(phys, K4);
            }

            Errno got = batched.MapChunks(new Iova(iova), chunks, prot, out int mapped);
            foreach (ByteRange c in chunks)
            {
                Assert.Equal(Errno.None, single.Map(new Iova(iova), new PhysAddr(c.Start), K4, prot));
                iova += K4;
            }

            Assert.Equal(Errno.None, got);
            Assert.Equal(n, mapped);
            Assert.Equal(single.MappedRuns(), batched.MappedRuns());
            Assert.Equal(single.EntryCounts(), batched.EntryCounts());
            Assert.Equal(single.TotalEntries, batched.TotalEntries);
            AssertClean(batched);
        }
        Assert.True(joins > 10, $"{joins} joining chunks: the mix does not exercise the run-by-run test");
    }
}
