using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using static VfioLab.Tests.Host.HostFixture;

namespace VfioLab.Tests.Host;

/// <summary>
/// Pins the scattered frame layout: for a given seed the slot permutation, the frames the allocator hands out (in
/// order, whatever the request sizes, holes, frees and fault injection) and the page table a populate leaves must stay
/// exactly what they are, because tests, scenarios and external acceptance suites name those frames. The expected
/// values were produced by the allocator of main 03690fe (one permutation index, one slot, one frame run at a time),
/// before populate was batched (issue 16); any change to them is a change of every scattered layout, not a speed-up.
/// </summary>
public class ScatteredLayoutPinTests
{
    // 72 GiB of 4 KiB frames in 1-page slots (the shattered-64g scenario's host), 4 GiB, an odd small count, a 1 PiB
    // host (2^38 slots: halves of 19 bits), and the smallest permutations.
    [Theory]
    [InlineData(18_874_368UL, 7UL, "762a99,b806ce,c8ed7,1020f5c,3c586f,8af23f,47b849,a8bfac", "e3a02d55e01ee623")]
    [InlineData(1UL << 20, 7UL, "8bef5,5e14,f2415,5f031,40766,7524,767ca,f82e4", "8fd8ea2ed8484d1f")]
    [InlineData(1UL << 20, 0x5ca7_0001UL, "608c8,ffab4,a1548,31db2,41f90,e8830,8d1f,983db", "6351ace4c851ec07")]
    [InlineData(1000UL, 3UL, "2e0,32f,96,385,18,1bf,383,210", "32869897233ae057")]
    [InlineData(1UL << 38, 5UL, "1361e58f2e,1e78ced5f0,345cf0991d,16f24d536f,38cbf39421,224e2e9c67,1fb53131e,288c496302", "2738fa8a966af467")]
    [InlineData(3UL, 1UL, "0,1,2", "a4e0439b88456d25")]
    public void SlotPermutation_ForASeed_IsPinned(ulong count, ulong seed, string first, string digest)
    {
        var perm = new SlotPermutation(count, seed);
        ulong n = Math.Min(count, 8);
        string got = string.Join(",", Enumerable.Range(0, (int)n).Select(i => perm[(ulong)i].ToString("x")));
        Assert.Equal(first, got);
        // A digest of up to 2^16 consecutive indices from the start and 2^12 spread over the whole range.
        var h = new Fnv();
        for (ulong i = 0; i < Math.Min(count, 1UL << 16); i++)
        {
            h.Add(perm[i]);
        }
        for (ulong k = 0; k < 4096; k++)
        {
            h.Add(perm[k * (count / 4096 + 1) % count]);
        }
        Assert.Equal(digest, h.Hex);
    }

    [Fact]
    public void SlotPermutation_IsABijection()
    {
        foreach (ulong count in new ulong[] { 1, 2, 5, 64, 1000, 4097, 70_000 })
        {
            var perm = new SlotPermutation(count, 11);
            var seen = new bool[count];
            for (ulong i = 0; i < count; i++)
            {
                ulong s = perm[i];
                Assert.True(s < count && !seen[s], $"count {count}: slot {s} at {i}");
                seen[s] = true;
            }
        }
    }

    // Every allocation of a scattered host in order (first frame and length), through holes the huge-page and reserved
    // frames leave in slots, frames freed behind and at the cursor, requests that end inside a slot, RAM running out,
    // and the lowest-first fallback once every slot was visited.
    [Theory]
    [InlineData(1UL, 0x51UL, 16_581, "b5f9d3cd622a4e05")]
    [InlineData(4UL, 0x51UL, 7_587, "f10ca91072304e61")]
    [InlineData(16UL, 7UL, 3_237, "9c9fbb47539454d9")]
    public void TryAllocateRun_AHostsWholeLife_IsPinned(ulong runPages, ulong seed, int expectedRuns, string digest)
    {
        // 64 MiB and 3 frames: the last slot is short.
        var mem = new PhysicalMemory(12, (64UL << 20) + (3 << 12), FrameLayout.ScatteredRuns(runPages, seed));
        mem.Reserve(new Pfn(1000), 5);
        Assert.True(mem.TryAllocateBlock(512, 512, out Pfn huge));
        var h = new Fnv();
        h.Add(huge.Value);
        var owned = new List<PfnRun>();
        var rng = new SplitMix64(seed);
        ulong[] sizes = [1, 3, 7, 2, 100, 1, 1, 33, 5000];
        int calls = 0;
        while (true)
        {
            ulong want = sizes[calls % sizes.Length];
            calls++;
            if (!mem.TryAllocateRun(want, out PfnRun run))
            {
                break;
            }
            Assert.InRange(run.Count, 1UL, want);
            h.Add(run.First.Value);
            h.Add(run.Count);
            owned.Add(run);
            if (calls % 97 == 0)
            {
                // Free a few frames: some far behind the cursor, and the run just taken (its slot is at the cursor).
                for (int k = 0; k < 3; k++)
                {
                    int at = (int)(rng.Next() % (ulong)owned.Count);
                    PfnRun victim = owned[at];
                    owned.RemoveAt(at);
                    mem.DropRefs(victim);
                }
                mem.DropRefs(owned[^1]);
                owned.RemoveAt(owned.Count - 1);
            }
        }
        Assert.Equal(0UL, mem.FreeFrameCount);
        // Free a scatter of frames again: once every slot was visited the allocator takes the lowest free first.
        for (int k = 0; k < 40; k++)
        {
            int at = (int)(rng.Next() % (ulong)owned.Count);
            mem.DropRefs(owned[at]);
            owned.RemoveAt(at);
        }
        while (mem.TryAllocateRun(sizes[calls++ % sizes.Length], out PfnRun again))
        {
            h.Add(again.First.Value);
            h.Add(again.Count);
        }
        Assert.Equal(expectedRuns, calls);
        Assert.Equal(digest, h.Hex);
    }

    // MAP_POPULATE of private anonymous memory on scattered hosts: every PTE (virtual page, frame) of the mappings.
    [Theory]
    [InlineData(1UL, 7UL, 256UL, "63d9d0ad27c7401f")]
    [InlineData(2UL, 9UL, 256UL, "9dbd0cefc8860557")]
    [InlineData(16UL, 7UL, 256UL, "6e4a839b5560b3db")]
    [InlineData(1UL, 7UL, 4096UL, "2ec5c0214cf6a133")]
    public void MmapPopulate_PageTable_IsPinned(ulong runPages, ulong seed, ulong ramMiB, string digest)
    {
        var m = NewMachine(ramMiB * MiB, layout: FrameLayout.ScatteredRuns(runPages, seed));
        Process p = m.Spawn("pin");
        AddressSpace mm = p.Mm!;
        // Frames taken before the populate (a partly used host): a huge page and some single faults.
        ulong huge = MmapAnon(mm, 2 * MiB, extra: MmapFlags.HugeTlb | MmapFlags.Populate);
        ulong small = MmapAnon(mm, 40 * 4096);
        for (ulong i = 0; i < 40; i += 3)
        {
            WriteByte(mm, small + (i * 4096));
        }
        ulong big = MmapAnon(mm, ramMiB * MiB / 2, extra: MmapFlags.Populate);
        ulong second = MmapAnon(mm, ramMiB * MiB / 8, extra: MmapFlags.Populate);
        var h = new Fnv();
        foreach ((ulong start, ulong pages) in new[] { (huge, 512UL), (small, 40UL), (big, ramMiB * MiB / 2 / 4096), (second, ramMiB * MiB / 8 / 4096) })
        {
            HashPtes(mm, start, pages, ref h);
        }
        Assert.Equal(digest, h.Hex);
    }

    // A populate that the alloc fault site fails part-way keeps the pages mapped before the failure (mm_populate ignores
    // the error): which pages and frames, for failures at the first, a middle and a late allocation.
    [Theory]
    [InlineData(1UL, 1L, "da8e1fd52cdaa90c")]
    [InlineData(1UL, 2L, "6d12d3285df42786")]
    [InlineData(1UL, 1000L, "26c7c99e579cc378")]
    [InlineData(4UL, 3L, "4f972492d13a08ae")]
    [InlineData(4UL, 700L, "6e2c9e91d8ebe3b0")]
    public void MmapPopulate_WithAnAllocFailure_IsPinned(ulong runPages, long nth, string digest)
    {
        var faults = new FaultInjector();
        var m = new Machine(64 * MiB, 12, FrameLayout.ScatteredRuns(runPages, 0x77), faults: faults);
        Process p = m.Spawn("pin");
        AddressSpace mm = p.Mm!;
        ulong pre = MmapAnon(mm, 64 * 4096);
        for (ulong i = 0; i < 64; i += 5)
        {
            WriteByte(mm, pre + (i * 4096));
        }
        faults.Arm(nth, FaultSite.Alloc);
        ulong a = MmapAnon(mm, 16 * MiB, extra: MmapFlags.Populate);
        Assert.True(faults.Fired);
        faults.Arm(0);
        var h = new Fnv();
        HashPtes(mm, pre, 64, ref h);
        HashPtes(mm, a, 16 * MiB / 4096, ref h);
        Assert.Equal(digest, h.Hex);
    }

    internal static void WriteByte(AddressSpace mm, ulong vaddr)
    {
        mm.MmapReadLock();
        try
        {
            Vma vma = mm.FindVmaLocked(new HostVirtAddr(vaddr))!;
            Assert.Equal(VmFaultResult.Ok, mm.FaultRangeLocked(vma, vaddr >> 12, 1, write: true));
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    // Present pages as (page index, frame) and absent ones as a marker, in virtual order.
    private static void HashPtes(AddressSpace mm, ulong start, ulong pages, ref Fnv h)
    {
        mm.MmapReadLock();
        try
        {
            for (ulong i = 0; i < pages; i++)
            {
                if (mm.TryTranslateLocked(new HostVirtAddr(start + (i << 12)), out Pte pte))
                {
                    h.Add(i);
                    h.Add(pte.Pfn.Value);
                    h.Add(pte.Writable ? 1UL : 0UL);
                }
                else
                {
                    h.Add(ulong.MaxValue);
                }
            }
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    // FNV-1a over 64-bit words.
    private struct Fnv()
    {
        private ulong _h = 0xcbf29ce484222325UL;

        public void Add(ulong v)
        {
            for (int i = 0; i < 8; i++)
            {
                _h = (_h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3UL;
            }
        }

        public readonly string Hex => _h.ToString("x16");
    }
}
