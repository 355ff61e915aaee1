using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Iommu;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

/// <summary>
/// A read-only MAP_DMA of never-touched private anonymous memory: under <c>linux-6.1</c> GUP hands type1 the shared
/// zero page, a reserved pfn (mapped a page at a time, not charged, blind to later CPU writes); from 84209e87c696
/// (v6.2: <c>linux-6.12</c>, <c>linux-6.18</c>, <c>seeds</c>) GUP unshares it into fresh pages that are charged.
/// The conformance rig saw both (docs/conformance.md, difference 2).
/// </summary>
public sealed class ZeroPageMapTests
{
    private const ulong Iova = 0x100000;
    private const ulong Size = 0x4000;

    [Theory]
    [InlineData(KernelSettings.Linux61, 0UL)]
    [InlineData(KernelSettings.Linux612, 4UL)]
    [InlineData(KernelSettings.Linux618, 4UL)]
    [InlineData(KernelSettings.Seeds, 4UL)]
    public void MapReadOnly_UntouchedMemory_ChargesOnlyWhenGupUnsharesTheZeroPage(string profile, ulong charged)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();
        ulong va = t.MmapAnonymous(Size);

        Assert.Equal(0, t.Map(c, Iova, va, Size, DmaMapFlags.Read));

        Assert.Equal(charged, t.LockedVmPages);
        Assert.Equal(charged, t.PinnedFrames);
        IommuDomain domain = t.DomainOf(Type1TestHost.GpuGroup)!;
        Pfn? zero = t.Machine.Memory.ZeroFrame;
        // Four 4 KiB IOPTEs either way: 6.1's all reach the zero frame (one chunk each), the others fresh frames.
        Assert.Equal(4UL, domain.EntryCount(0x1000));
        bool onZero = zero is { } z && domain.IovaToPhys(new Iova(Iova + 0x3000)) == z.ToPhys(12);
        Assert.Equal(charged == 0, onZero);
        Assert.Empty(new InvariantChecker(t.Host).Check());
    }

    [Theory]
    [InlineData(KernelSettings.Linux61, false)]
    [InlineData(KernelSettings.Linux612, true)]
    public void CpuWriteAfterReadOnlyMap_DeviceSeesItOnlyWhenThePinnedPageIsTheProcesss(string profile, bool seen)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();
        ulong va = t.MmapAnonymous(Size);
        Assert.Equal(0, t.Map(c, Iova, va, Size, DmaMapFlags.Read));

        Assert.Equal(0, t.Sys.WriteMemory(va + 0x1010, [0x5a, 0xa5]));

        DeviceDmaResult read = DeviceDma.Read(t.Host, t.Host.Devices["gpu"], new Iova(Iova + 0x1010), 2);
        Assert.Null(read.Fault);
        Assert.Equal(seen ? new byte[] { 0x5a, 0xa5 } : new byte[2], read.Data);
        // Under 6.1 the write moved the process to a page of its own; nothing was charged for it.
        Assert.Equal(seen ? 4UL : 0UL, t.LockedVmPages);
        Assert.Empty(new InvariantChecker(t.Host).Check());
    }

    [Theory]
    [InlineData(KernelSettings.Linux61)]
    [InlineData(KernelSettings.Linux612)]
    public void DeviceWrite_ThroughReadOnlyMapOfUntouchedMemory_FaultsAndLeavesZeros(string profile)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();
        ulong va = t.MmapAnonymous(Size);
        Assert.Equal(0, t.Map(c, Iova, va, Size, DmaMapFlags.Read));

        DeviceDmaResult write = DeviceDma.Write(t.Host, t.Host.Devices["gpu"], new Iova(Iova), [1, 2, 3, 4]);

        Assert.NotNull(write.Fault);
        Assert.Equal(0UL, write.Bytes);
        DeviceDmaResult read = DeviceDma.Read(t.Host, t.Host.Devices["gpu"], new Iova(Iova), 4);
        Assert.Equal(new byte[4], read.Data);
        byte[] cpu = new byte[4];
        Assert.Equal(0, t.Sys.ReadMemory(va, cpu));
        Assert.Equal(new byte[4], cpu);
    }

    [Theory]
    [InlineData(KernelSettings.Linux61)]
    [InlineData(KernelSettings.Linux612)]
    public void Unmap_ReadOnlyMapOfUntouchedMemory_ReturnsTheSizeAndLeavesNothingPinnedOrCharged(string profile)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();
        ulong va = t.MmapAnonymous(Size);
        // A page the process wrote first sits beside the zero frame: the unmap must unpin it and skip only the zero frame.
        Assert.Equal(0, t.Sys.WriteMemory(va + 0x2000, [7]));
        Assert.Equal(0, t.Map(c, Iova, va, Size, DmaMapFlags.Read));

        (long ret, ulong size) = t.Unmap(c, Iova, Size);

        Assert.Equal(0, ret);
        Assert.Equal(Size, size);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Empty(new InvariantChecker(t.Host).Check());
    }

    [Fact]
    public void MapReadOnly_UntouchedMemoryUnderLinux61WithTightMemlock_SucceedsUncharged()
    {
        var t = new Type1TestHost(memlock: 0x1000, kernel: new KernelSettings(KernelSettings.Linux61, []));
        (int c, _) = t.Container();
        ulong va = t.MmapAnonymous(Size);

        Assert.Equal(0, t.Map(c, Iova, va, Size, DmaMapFlags.Read));
        Assert.Equal(0UL, t.LockedVmPages);
        // A read-write MAP of other untouched memory is charged and over the limit.
        ulong rw = t.MmapAnonymous(Size);
        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, Iova + Size, rw, Size));
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Empty(new InvariantChecker(t.Host).Check());
    }
    [Theory]
    [InlineData(KernelSettings.Linux61, true)]
    [InlineData(KernelSettings.Linux612, false)]
    public void MdevPinOfReadOnlyMapOfUntouchedMemory_GetsTheZeroFrameUnchargedOnlyUnderLinux61(string profile, bool zero)
    {
        var m = new Mdev.MdevTestHost(new Type1TestHost(kernel: new KernelSettings(profile, [])));
        ulong va = m.T.MmapAnonymous(Size);
        Assert.Equal(0, m.T.Map(m.Container, Iova, va, Size, DmaMapFlags.Read));

        Assert.Equal(1, m.Pin(Iova + 0x1000, 1, out Pfn[] pfns, IommuProt.Read));

        Assert.Equal(zero, m.T.Machine.Memory.IsZeroFrame(pfns[0]));
        // No domain: type1 charges an external pin unless its pfn is reserved, as the zero frame is.
        Assert.Equal(zero ? 0UL : 1UL, m.T.LockedVmPages);
        Assert.Equal(zero ? 0UL : 1UL, m.T.TotalPins);
        m.AssertClean();
        Assert.True(m.Unpin(Iova + 0x1000, 1));
        Assert.Equal(0UL, m.T.LockedVmPages);
        Assert.Equal(0UL, m.T.TotalPins);
        m.AssertClean();
    }
}
