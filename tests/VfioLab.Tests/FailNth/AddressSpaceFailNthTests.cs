using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.FailNth;

/// <summary>
/// Fail-nth of the Host's own multi-step mm operations: mmap (the old range's splits for MAP_FIXED, then
/// <c>vm_area_alloc</c>) and munmap (a split per VMA end it cuts). Each failure answers ENOMEM and leaves the VMA
/// layout, the memory's contents and the VFIO state exactly as before.
/// </summary>
public sealed class AddressSpaceFailNthTests
{
    private const ulong KiB = 1UL << 10;
    private const ulong MiB = 1UL << 20;

    /// <summary>The process's VMAs as text: start, last, kind, flags.</summary>
    private static string Vmas(Type1TestHost rig)
    {
        AddressSpace mm = rig.Process.LastMm;
        mm.MmapReadLock();
        try
        {
            return string.Join('\n', mm.SnapshotVmasLocked().Select(v => $"{v.StartPage:x}-{v.LastPage:x} {v.Kind} {v.Flags}"));
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    private static byte[] Read(Type1TestHost rig, ulong address, int length)
    {
        byte[] b = new byte[length];
        Assert.Equal(0, rig.Sys.ReadMemory(address, b));
        return b;
    }

    /// <summary>Wraps <paramref name="operation"/> so each failure also proves the layout and the bytes at
    /// <paramref name="probe"/> unchanged (the sweep itself compares the VFIO digest and free frames).</summary>
    private static Func<long> Unchanged(Type1TestHost rig, Func<long> operation, ulong probe = 0)
    {
        return () =>
        {
            string before = Vmas(rig);
            byte[]? bytes = probe == 0 ? null : Read(rig, probe, 16);
            long ret = operation();
            if (ret < 0)
            {
                Assert.Equal(before, Vmas(rig));
                if (bytes is not null)
                {
                    Assert.Equal(bytes, Read(rig, probe, 16));
                }
            }
            return ret;
        };
    }

    [Fact]
    public void Mmap_Anonymous_VmAreaAllocFails_ReturnsENOMEMAndMapsNothing()
    {
        var rig = new Type1TestHost();
        int points = FailNthSweep.Run(rig.Host, Unchanged(rig, () => rig.Sys.Mmap(0, 1 * MiB, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous, -1, 0)), [Errno.ENOMEM]);
        Assert.Equal(1, points);
    }

    [Fact]
    public void Mmap_FixedOverTheMiddleOfAMapping_SplitsThenAlloc_EachFailureKeepsTheOldMapping()
    {
        var rig = new Type1TestHost();
        ulong a = rig.MmapAnonymous(1 * MiB);
        Assert.Equal(0, rig.Sys.WriteMemory(a + (256 * KiB), new byte[16].Select((_, i) => (byte)(i + 1)).ToArray()));
        int points = FailNthSweep.Run(rig.Host, Unchanged(rig, () => rig.Sys.Mmap(a + (256 * KiB), 256 * KiB, MemoryProtection.Read,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Fixed, -1, 0), probe: a + (256 * KiB)), [Errno.ENOMEM]);
        Assert.Equal(3, points); // split at the start, split at the end, the new VMA
        Assert.Equal(new byte[16], Read(rig, a + (256 * KiB), 16)); // the new mapping replaced the old bytes
    }

    [Fact]
    public void Munmap_MiddleOfAVma_TwoSplitsFail_ReturnsENOMEMAndKeepsEverything()
    {
        var rig = new Type1TestHost();
        ulong a = rig.MmapAnonymous(1 * MiB);
        Assert.Equal(0, rig.Sys.WriteMemory(a + (512 * KiB), [0xde, 0xad]));
        int points = FailNthSweep.Run(rig.Host, Unchanged(rig, () => rig.Sys.Munmap(a + (512 * KiB), 64 * KiB), probe: a + (512 * KiB)), [Errno.ENOMEM]);
        Assert.Equal(2, points);
        Assert.Equal(Errno.EFAULT.AsReturn(), rig.Sys.ReadMemory(a + (512 * KiB), new byte[1]));
    }

    [Fact]
    public void Munmap_HeadOfAVma_OneSplit()
    {
        var rig = new Type1TestHost();
        ulong a = rig.MmapAnonymous(1 * MiB);
        int points = FailNthSweep.Run(rig.Host, Unchanged(rig, () => rig.Sys.Munmap(a, 64 * KiB)), [Errno.ENOMEM]);
        Assert.Equal(1, points);
    }

    [Fact]
    public void Munmap_WholeVmas_HasNoFailurePoint()
    {
        var rig = new Type1TestHost();
        ulong a = rig.MmapAnonymous(1 * MiB);
        int points = FailNthSweep.Run(rig.Host, () => rig.Sys.Munmap(a, 1 * MiB), []);
        Assert.Equal(0, points);
    }

    [Fact]
    public void Munmap_HugetlbOffAHugeBoundary_EinvalBeforeAnyAllocation()
    {
        var rig = new Type1TestHost();
        ulong a = rig.MmapHuge(4 * MiB, MmapFlags.Huge2MiB);
        string before = Vmas(rig);
        rig.Host.Machine.Faults.Arm(1);
        Assert.Equal(Errno.EINVAL.AsReturn(), rig.Sys.Munmap(a + (64 * KiB), 64 * KiB));
        Assert.False(rig.Host.Machine.Faults.Fired);
        rig.Host.Machine.Faults.Arm(0);
        Assert.Equal(before, Vmas(rig));
        // On a huge-page boundary the split is allowed, and fallible.
        Assert.Equal(1, FailNthSweep.Run(rig.Host, Unchanged(rig, () => rig.Sys.Munmap(a, 2 * MiB)), [Errno.ENOMEM]));
    }

    [Fact]
    public void Mmap_Teardown_ExitHasNoFailurePoint()
    {
        var rig = new Type1TestHost();
        rig.MmapAnonymous(1 * MiB);
        rig.MmapHuge(4 * MiB, MmapFlags.Huge2MiB);
        int points = FailNthSweep.Run(rig.Host, () =>
        {
            rig.Sys.Exit();
            return 0;
        }, []);
        Assert.Equal(0, points);
    }
}
