using VfioLab.Abi;
using VfioLab.Type1;

namespace VfioLab.Tests.Type1;

/// <summary>The DMA tree, an intrusive red-black tree of the mappings (Type1/DmaTree.cs), driven through MAP_DMA and
/// UNMAP_DMA against a plain list of the mappings: the errno, the size removed, the tree's own soundness (colours,
/// black height, parent links, order, count) and its lookups after every call.</summary>
public sealed class DmaTreeTests
{
    private const ulong Page = 0x1000;
    private const int Slots = 256;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void MapUnmap_RandomOrder_TreeStaysSoundAndAgreesWithList(int seed)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong ram = t.MmapAnonymous(Slots * Page, populate: true);
        VfioIommu backend = t.Backend(c);
        var held = new SortedDictionary<ulong, ulong>(); // first page -> pages
        var random = new Random(seed);
        ulong lastMapped = 0;
        for (int step = 0; step < 3000; step++)
        {
            ulong first = (ulong)random.Next(Slots);
            ulong pages = (ulong)random.Next(1, 5);
            if (first + pages > Slots)
            {
                pages = Slots - first;
            }
            bool overlaps = held.Any(h => h.Key < first + pages && first < h.Key + h.Value);
            if (random.Next(2) == 0)
            {
                long ret = t.Map(c, 0x100000 + (first * Page), ram + (first * Page), pages * Page);
                lastMapped = first;
                Assert.Equal(overlaps ? Errno.EEXIST.AsReturn() : 0, ret);
                if (!overlaps)
                {
                    held.Add(first, pages);
                }
            }
            else
            {
                // Only whole mappings go (v2 refuses to cut one): pick a stretch from a held mapping's start.
                List<KeyValuePair<ulong, ulong>> inside = [.. held.Where(h => h.Key >= first && h.Key + h.Value <= first + pages)];
                bool cuts = held.Any(h => h.Key < first + pages && first < h.Key + h.Value && (h.Key < first || h.Key + h.Value > first + pages));
                (long ret, ulong size) = t.Unmap(c, 0x100000 + (first * Page), pages * Page);
                if (cuts)
                {
                    Assert.Equal(Errno.EINVAL.AsReturn(), ret);
                }
                else
                {
                    Assert.Equal(0, ret);
                    Assert.Equal(inside.Aggregate(0UL, (sum, h) => sum + h.Value) * Page, size);
                    foreach (KeyValuePair<ulong, ulong> h in inside)
                    {
                        held.Remove(h.Key);
                    }
                }
            }
            using (backend.CheckLock.EnterScope())
            {
                DmaTree tree = backend.TreeForCheck;
                Assert.True(tree.IsSoundForTestLocked(), $"step {step}");
                Assert.Equal(held.Count, tree.CountLocked);
                // A random page, and the page the last MAP named (the lookup's shortcut: the mapping last linked, which
                // an UNMAP since may have removed).
                foreach (ulong probe in new[] { 0x100000 + ((ulong)random.Next(Slots) * Page), 0x100000 + (lastMapped * Page) })
                {
                    KeyValuePair<ulong, ulong>? holder = held.Where(h => probe >= 0x100000 + (h.Key * Page) && probe < 0x100000 + ((h.Key + h.Value) * Page))
                        .Select(h => (KeyValuePair<ulong, ulong>?)h).FirstOrDefault();
                    Assert.Equal(holder is { } hh ? 0x100000 + (hh.Key * Page) : null, tree.FindLocked(new VfioLab.Addressing.Iova(probe))?.Range.Start);
                }
                List<ulong> runs = [];
                foreach (VfioLab.Collections.Run<DmaRef> r in tree.RunsLocked())
                {
                    Assert.Equal(r.Value.Dma.Range.Start, r.Start);
                    runs.Add(r.Start);
                }
                Assert.Equal(held.Keys.Select(k => 0x100000 + (k * Page)), runs);
            }
        }
    }

    [Fact]
    public void RunsLocked_SpanInsideMappings_ClipsToTheSpan()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong ram = t.MmapAnonymous(16 * Page, populate: true);
        Assert.Equal(0, t.Map(c, 0x100000, ram, 4 * Page));
        Assert.Equal(0, t.Map(c, 0x100000 + (8 * Page), ram + (8 * Page), 4 * Page));
        VfioIommu backend = t.Backend(c);
        using (backend.CheckLock.EnterScope())
        {
            List<(ulong, ulong)> runs = [];
            foreach (VfioLab.Collections.Run<DmaRef> r in backend.TreeForCheck.RunsLocked(new VfioLab.Addressing.ByteRange(0x100000 + Page, 0x100000 + (9 * Page) - 1)))
            {
                runs.Add((r.Start, r.Last));
            }
            Assert.Equal([(0x100000 + Page, 0x100000 + (4 * Page) - 1), (0x100000 + (8 * Page), 0x100000 + (9 * Page) - 1)], runs);
            Assert.Equal(new VfioLab.Addressing.ByteRange(0x100000, 0x100000 + (12 * Page) - 1),
                backend.TreeForCheck.CheckWindowLocked(0x100000 + (5 * Page), 0x100000 + (6 * Page) - 1));
        }
    }
}

/// <summary>UNMAP keeps a few removed mappings for the next MAPs (DmaMapUnmap's spares, as the kernel's slab): a
/// renewed one starts as a new one would, whatever the removed one had become.</summary>
public sealed class DmaSpareTests
{
    private const ulong Page = 0x1000;

    [Fact]
    public void Map_AfterUnmapOfAnInvalidatedCharged_StartsFresh()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong ram = t.MmapAnonymous(8 * Page, populate: true);
        VfioIommu backend = t.Backend(c);
        Assert.Equal(0, t.Map(c, 0x100000, ram, 4 * Page, DmaMapFlags.Read));
        Assert.Equal(0, t.Unmap(c, 0x100000, 4 * Page, DmaUnmapFlags.Vaddr).Ret);
        Assert.Equal((0L, 4 * Page), t.Unmap(c, 0x100000, 4 * Page));
        VfioDma removed;
        using (backend.CheckLock.EnterScope())
        {
            Assert.Null(backend.TreeForCheck.FindLocked(new VfioLab.Addressing.Iova(0x100000)));
        }

        Assert.Equal(0, t.Map(c, 0x200000, ram + (4 * Page), 2 * Page));

        using (backend.CheckLock.EnterScope())
        {
            removed = backend.TreeForCheck.FindLocked(new VfioLab.Addressing.Iova(0x200000))!;
            Assert.Equal(0x200000UL, removed.Range.Start);
            Assert.Equal(2 * Page, removed.Size);
            Assert.Equal(ram + (4 * Page), removed.Vaddr.Value);
            Assert.Equal(VfioLab.Iommu.IommuProt.Read | VfioLab.Iommu.IommuProt.Write, removed.Prot & (VfioLab.Iommu.IommuProt.Read | VfioLab.Iommu.IommuProt.Write));
            Assert.False(removed.VaddrInvalid);
            Assert.True(removed.IommuMapped);
            Assert.Equal(2L, removed.LockedVm);
            Assert.Equal(0, backend.TreeForCheck.VaddrInvalidCountLocked);
            Assert.Equal(1, backend.TreeForCheck.CountLocked);
            Assert.True(backend.TreeForCheck.IsSoundForTestLocked());
        }
        Assert.Empty(new VfioLab.Checks.InvariantChecker(t.Host).Check());
        Assert.Equal((0L, 2 * Page), t.Unmap(c, 0x200000, 2 * Page));
        Assert.Empty(new VfioLab.Checks.InvariantChecker(t.Host).Check());
    }

    [Fact]
    public void Map_ManyAfterManyUnmaps_EachMappingIsItsOwn()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong ram = t.MmapAnonymous(16 * Page, populate: true);
        VfioIommu backend = t.Backend(c);
        for (ulong i = 0; i < 8; i++)
        {
            Assert.Equal(0, t.Map(c, 0x100000 + (i * Page), ram + (i * Page), Page));
        }
        Assert.Equal((0L, 8 * Page), t.Unmap(c, 0x100000, 8 * Page));
        for (ulong i = 0; i < 8; i++)
        {
            Assert.Equal(0, t.Map(c, 0x400000 + (i * 2 * Page), ram + (8 * Page) + (i * Page), Page));
        }

        using (backend.CheckLock.EnterScope())
        {
            var seen = new HashSet<VfioDma>(ReferenceEqualityComparer.Instance);
            for (ulong i = 0; i < 8; i++)
            {
                VfioDma d = backend.TreeForCheck.FindLocked(new VfioLab.Addressing.Iova(0x400000 + (i * 2 * Page)))!;
                Assert.True(seen.Add(d));
                Assert.Equal(0x400000 + (i * 2 * Page), d.Range.Start);
                Assert.Equal(ram + (8 * Page) + (i * Page), d.Vaddr.Value);
            }
            Assert.Equal(8, backend.TreeForCheck.CountLocked);
            Assert.True(backend.TreeForCheck.IsSoundForTestLocked());
        }
        Assert.Empty(new VfioLab.Checks.InvariantChecker(t.Host).Check());
    }
}
