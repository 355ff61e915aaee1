using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;

namespace VfioLab.Tests.Type1;

/// <summary>VFIO_IOMMU_MAP_DMA (spec §1.5): every check in the kernel's order with its exact errno, then
/// the state it leaves (mappings, slots, locked_vm, pins, IOPTEs); the VADDR update (§3.12, §3.13).</summary>
public sealed partial class MapDmaTests
{
    private const ulong KiB = Type1TestHost.KiB;
    private const ulong MiB = Type1TestHost.MiB;
    private const ulong Top = ulong.MaxValue;

    // ---- 1. copy, argsz, flags ----

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(31)]
    public void MapDma_BufferShorterThanStruct_ReturnsEFAULT(int length)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Span<byte> full = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = DmaMapFlags.Read | DmaMapFlags.Write, Vaddr = buf, Iova = 0, Size = 1 * MiB }.Write(full);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Sys.Ioctl(c, VfioIoctl.IommuMapDma, full[..length]));

        AssertNothingMapped(t, c);
    }

    [Fact]
    public void MapDma_ShortBufferAndBadArgsz_ReturnsEFAULTBeforeEINVAL()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        Span<byte> buf = stackalloc byte[8];

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Sys.Ioctl(c, VfioIoctl.IommuMapDma, buf));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(8u)]
    [InlineData(31u)]
    public void MapDma_ArgszBelow32_ReturnsEINVAL(uint argsz)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0, buf, 1 * MiB, argsz: argsz));

        AssertNothingMapped(t, c);
    }

    [Fact]
    public void MapDma_ArgszLargerThanStruct_IsAccepted()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB, argsz: 4096));

        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(256UL, t.LockedVmPages);
    }

    [Theory]
    [InlineData(8u)]
    [InlineData(0x80000000u)]
    [InlineData(0xfffffff8u)]
    public void MapDma_UnknownFlag_ReturnsEINVAL(uint extra)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0, buf, 1 * MiB, DmaMapFlags.Read | DmaMapFlags.Write | (DmaMapFlags)extra));

        AssertNothingMapped(t, c);
    }

    // ---- 2. size 0 and wrap (v6.18: before the lock, EOVERFLOW) ----

    [Theory]
    [InlineData(KernelSettings.Seeds)]
    [InlineData(KernelSettings.Linux618)]
    public void MapDma_SizeZero_ReturnsEINVAL(string profile)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0, buf, 0));

        AssertNothingMapped(t, c);
    }

    [Theory]
    [InlineData(KernelSettings.Seeds)]
    [InlineData(KernelSettings.Linux618)]
    public void MapDma_IovaRangeWraps_ReturnsEOVERFLOW(string profile)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(Errno.EOVERFLOW.AsReturn(), t.Map(c, Top - (4 * KiB) + 1, buf, 8 * KiB));

        AssertNothingMapped(t, c);
    }

    [Theory]
    [InlineData(KernelSettings.Seeds)]
    [InlineData(KernelSettings.Linux618)]
    public void MapDma_VaddrRangeWraps_ReturnsEOVERFLOW(string profile)
    {
        var t = new Type1TestHost(kernel: new KernelSettings(profile, []));
        (int c, _) = t.Container();

        Assert.Equal(Errno.EOVERFLOW.AsReturn(), t.Map(c, 0, Top - (4 * KiB) + 1, 8 * KiB));

        AssertNothingMapped(t, c);
    }

    [Fact]
    public void MapDma_WrapWithBadProtAndMisalignment_ReturnsEOVERFLOWFirst()
    {
        // v6.18 checks the wrap before prot and before the alignment taken under the lock.
        var t = new Type1TestHost();
        (int c, _) = t.Container();

        Assert.Equal(Errno.EOVERFLOW.AsReturn(), t.Map(c, Top - 0x7ff, 0x10000, 0x1000, DmaMapFlags.None));
    }

    [Fact]
    public void MapDma_SizeZeroWithBadProt_ReturnsEINVAL()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, Top - 0xfff, Top - 0xfff, 0, DmaMapFlags.None));
    }

    // ---- 3. prot / VADDR ----

    [Theory]
    [InlineData(DmaMapFlags.None)]
    [InlineData(DmaMapFlags.Read | DmaMapFlags.Vaddr)]
    [InlineData(DmaMapFlags.Write | DmaMapFlags.Vaddr)]
    [InlineData(DmaMapFlags.Read | DmaMapFlags.Write | DmaMapFlags.Vaddr)]
    public void MapDma_ProtAndVaddrMixed_ReturnsEINVAL(DmaMapFlags flags)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB, DmaUnmapFlags.Vaddr).Ret);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, 0, buf, 1 * MiB, flags));

        // The invalidated mapping is still waiting for its new vaddr.
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB, DmaMapFlags.Vaddr));
        Assert.Equal(256UL, t.LockedVmPages);
    }

    [Fact]
    public void MapDma_WriteOnly_MapsWithoutReadPermission()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB, DmaMapFlags.Write));

        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.True(d.Translate(new Iova(0x1000), write: true).Ok);
        Assert.Equal(IommuFaultReason.ReadDenied, d.Translate(new Iova(0x1000), write: false).Fault);
    }

    // ---- 5. alignment to the minimum page size ----

    [Theory]
    [InlineData(0x0UL, 0x0UL, 0x800UL)]
    [InlineData(0x0UL, 0x0UL, 0x100800UL)]
    [InlineData(0x800UL, 0x0UL, 0x100000UL)]
    [InlineData(0x100200UL, 0x0UL, 0x100000UL)]
    [InlineData(0x0UL, 0x800UL, 0x100000UL)]
    [InlineData(0x0UL, 0x8UL, 0x100000UL)]
    public void MapDma_Misaligned_ReturnsEINVAL(ulong iova, ulong vaddrOffset, ulong size)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, iova, buf + vaddrOffset, size));

        AssertNothingMapped(t, c);
    }

    [Fact]
    public void MapDma_AlignedToSecondDomainsMinimum_Succeeds()
    {
        // pgsize is the AND of the domains' bitmaps; 4K stays the minimum with a 4K|2M second domain.
        var t = new Type1TestHost(otherIommu: IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M));
        (int c, _) = t.Container();
        t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(0, t.Map(c, 0x3000, buf + 0x1000, 0x5000));

        Assert.Equal(5UL, t.LockedVmPages);
        Assert.Equal(5UL, t.DomainOf(Type1TestHost.GpuGroup)!.TotalEntries);
        Assert.Equal(5UL, t.DomainOf(Type1TestHost.OtherIommuGroup)!.TotalEntries);
    }

    // ---- 7. overlap ----

    [Theory]
    [InlineData(0x100000UL, 0x200000UL)] // exact
    [InlineData(0x0UL, 0x200000UL)] // front part
    [InlineData(0x200000UL, 0x200000UL)] // back part
    [InlineData(0x0UL, 0x400000UL)] // containing
    [InlineData(0x180000UL, 0x1000UL)] // contained
    [InlineData(0x2ff000UL, 0x1000UL)] // last page
    [InlineData(0xff000UL, 0x2000UL)] // straddles the first byte
    public void MapDma_OverlapsExistingMapping_ReturnsEEXIST(ulong iova, ulong size)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(8 * MiB);
        Assert.Equal(0, t.Map(c, 0x100000, buf, 2 * MiB));
        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        ulong entries = d.TotalEntries;

        Assert.Equal(Errno.EEXIST.AsReturn(), t.Map(c, iova, buf + (4 * MiB), size));

        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(65534UL, t.Backend(c).DmaAvail);
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.Equal(512UL, t.TotalPins);
        Assert.Equal(entries, d.TotalEntries);
    }

    [Theory]
    [InlineData(0x0UL, 0x100000UL)]
    [InlineData(0x300000UL, 0x100000UL)]
    public void MapDma_AdjacentToExistingMapping_Succeeds(ulong iova, ulong size)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(8 * MiB);
        Assert.Equal(0, t.Map(c, 0x100000, buf, 2 * MiB));

        Assert.Equal(0, t.Map(c, iova, buf + (4 * MiB), size));

        Assert.Equal(2UL, t.Backend(c).MappingCount);
        Assert.Equal(768UL, t.LockedVmPages);
    }

    // ---- 8. slots ----

    [Fact]
    public void MapDma_DmaEntryLimitReached_ReturnsENOSPC()
    {
        var t = new Type1TestHost(kernel: KernelSettings.Default with { DmaEntryLimit = 2 });
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(3 * MiB);
        Assert.Equal(2UL, t.Backend(c).DmaAvail);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));
        Assert.Equal(0, t.Map(c, 1 * MiB, buf + (1 * MiB), 1 * MiB));
        Assert.Equal(0UL, t.Backend(c).DmaAvail);

        Assert.Equal(Errno.ENOSPC.AsReturn(), t.Map(c, 2 * MiB, buf + (2 * MiB), 1 * MiB));

        Assert.Equal(2UL, t.Backend(c).MappingCount);
        Assert.Equal(0UL, t.Backend(c).DmaAvail);
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.Equal(512UL, t.TotalPins);
        Assert.False(t.DomainOf(Type1TestHost.GpuGroup)!.Translate(new Iova(2 * MiB), write: false).Ok);

        // A slot comes back with an unmap.
        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB).Ret);
        Assert.Equal(0, t.Map(c, 2 * MiB, buf + (2 * MiB), 1 * MiB));
        Assert.Equal(0UL, t.Backend(c).DmaAvail);
    }

    [Fact]
    public void MapDma_RefusedAfterTheOverlapTest_LeavesTheRangeUnlinked()
    {
        // MAP links the new mapping in the descent that tests the overlap; ENOSPC and an injected dma_alloc failure
        // come after it and must unlink it: the range is free again and the tree holds exactly what it held.
        var t = new Type1TestHost(kernel: KernelSettings.Default with { DmaEntryLimit = 1 });
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(3 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));

        Assert.Equal(Errno.ENOSPC.AsReturn(), t.Map(c, 1 * MiB, buf + (1 * MiB), 1 * MiB));
        Assert.Equal(new[] { 0UL }, t.Backend(c).Snapshot().Mappings.Select(m => m.Iova));
        Assert.Equal(1UL, t.Backend(c).MappingCount);

        Assert.Equal(0, t.Unmap(c, 0, 1 * MiB).Ret);
        t.Host.Faults.Arm(1, FaultSite.DmaAlloc);
        Assert.Equal(Errno.ENOMEM.AsReturn(), t.Map(c, 1 * MiB, buf + (1 * MiB), 1 * MiB));
        t.Host.Faults.Arm(0);
        Assert.Empty(t.Backend(c).Snapshot().Mappings);
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(1UL, t.Backend(c).DmaAvail);
        Assert.Equal(0UL, t.LockedVmPages);

        Assert.Equal(0, t.Map(c, 1 * MiB, buf + (1 * MiB), 1 * MiB));
        Assert.Equal(new[] { 1 * MiB }, t.Backend(c).Snapshot().Mappings.Select(m => m.Iova));
    }

    [Fact]
    public void MapDma_NoSlotAndOverlap_ReturnsEEXISTBeforeENOSPC()
    {
        var t = new Type1TestHost(kernel: KernelSettings.Default with { DmaEntryLimit = 1 });
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));

        Assert.Equal(Errno.EEXIST.AsReturn(), t.Map(c, 0, buf, 1 * MiB));
    }

    [Fact]
    public void MapDma_NoSlotAndOutsideWindow_ReturnsENOSPCBeforeEINVAL()
    {
        var t = new Type1TestHost(kernel: KernelSettings.Default with { DmaEntryLimit = 1 });
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB);
        Assert.Equal(0, t.Map(c, 0, buf, 1 * MiB));

        Assert.Equal(Errno.ENOSPC.AsReturn(), t.Map(c, 0xfee00000, buf + (1 * MiB), 4 * KiB));
    }

    // ---- 9. valid IOVA windows ----

    [Theory]
    [InlineData(0xfee00000UL, 0x1000UL)] // inside the MSI window
    [InlineData(0xfeeff000UL, 0x1000UL)] // its last page
    [InlineData(0xfed00000UL, 0x200000UL)] // runs into it
    [InlineData(0xfee80000UL, 0x100000UL)] // runs out of it
    [InlineData(0xfe000000UL, 0x2000000UL)] // spans it: touches two windows
    [InlineData(1UL << 48, 0x1000UL)] // past the aperture
    [InlineData((1UL << 48) - 0x1000, 0x2000UL)] // runs past the aperture
    [InlineData(0xffffffffff000000UL, 0x1000000UL)] // ends at 2^64-1, past the aperture
    public void MapDma_OutsideValidIovaWindows_ReturnsEINVAL(ulong iova, ulong size)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(32 * MiB);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Map(c, iova, buf, size));

        AssertNothingMapped(t, c);
    }

    [Theory]
    [InlineData(0xfed00000UL, 0x100000UL)] // ends just below the MSI window
    [InlineData(0xfef00000UL, 0x100000UL)] // starts just above it
    [InlineData((1UL << 48) - 0x100000, 0x100000UL)] // ends at the aperture's end
    public void MapDma_InsideOneWindow_Succeeds(ulong iova, ulong size)
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);

        Assert.Equal(0, t.Map(c, iova, buf, size));

        Assert.True(t.DomainOf(Type1TestHost.GpuGroup)!.Translate(new Iova(iova + size - 1), write: true).Ok);
    }

    // ---- end of the address space (v6.18 inclusive ends) ----

    [Fact]
    public void MapDma_EndingAt2Pow64Minus1WithFullAperture_SucceedsAndUnmaps()
    {
        var full = IommuHardwareProfile.VtD.WithOverrides(aperture: new ByteRange(0, Top));
        var t = new Type1TestHost(iommu: full);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(2 * MiB);
        ulong iova = Top - (2 * MiB) + 1;

        Assert.Equal(0, t.Map(c, iova, buf, 2 * MiB));

        IommuDomain d = t.DomainOf(Type1TestHost.GpuGroup)!;
        Assert.Equal(1UL, t.Backend(c).MappingCount);
        Assert.Equal(512UL, t.LockedVmPages);
        Assert.True(d.Translate(new Iova(Top), write: true).Ok);
        Assert.True(d.Translate(new Iova(iova), write: true).Ok);
        Assert.False(d.Translate(new Iova(iova - 1), write: false).Ok);

        // A second mapping right below it, and an overlap probe at the very top.
        Assert.Equal(Errno.EEXIST.AsReturn(), t.Map(c, Top - 0xfff, buf, 0x1000));

        (long ret, ulong size) = t.Unmap(c, iova, 2 * MiB);
        Assert.Equal(0, ret);
        Assert.Equal(2 * MiB, size);
        AssertNothingMapped(t, c);
    }

    [Fact]
    public void MapDma_EndingAt2Pow64Minus1_UnmapAllRemovesIt()
    {
        var t = new Type1TestHost(iommu: IommuHardwareProfile.AmdVi);
        (int c, _) = t.Container();
        ulong buf = t.MmapAnonymous(1 * MiB);
        Assert.Equal(0, t.Map(c, Top - (1 * MiB) + 1, buf, 1 * MiB));

        (long ret, ulong size) = t.Unmap(c, 0, 0, DmaUnmapFlags.All);

        Assert.Equal(0, ret);
        Assert.Equal(1 * MiB, size);
        AssertNothingMapped(t, c);
    }

    private static byte[] MapArg(ulong iova, ulong vaddr, ulong size, DmaMapFlags flags)
    {
        var buf = new byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = flags, Vaddr = vaddr, Iova = iova, Size = size }.Write(buf);
        return buf;
    }

    private static byte[] UnmapArg(ulong iova, ulong size)
    {
        var buf = new byte[VfioIommuType1DmaUnmap.SizeOf];
        new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Iova = iova, Size = size }.Write(buf);
        return buf;
    }

    private static void AssertNothingMapped(Type1TestHost t, int c)
    {
        // The tree itself, not only its counter: MAP links a mapping before its last checks and unlinks it on refusal.
        Assert.Empty(t.Backend(c).Snapshot().Mappings);
        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Equal(65535UL, t.Backend(c).DmaAvail);
        Assert.Equal(0UL, t.LockedVmPages);
        Assert.Equal(0UL, t.TotalPins);
        Assert.Equal(0UL, t.PinnedFrames);
        Assert.Equal(0UL, t.DomainOf(Type1TestHost.GpuGroup)?.TotalEntries ?? 0);
    }
}
