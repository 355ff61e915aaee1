using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;
using static VfioLab.Tests.DeviceMemory.DeviceMemoryTestHost;

namespace VfioLab.Tests.DeviceMemory;

/// <summary>The two historical device-memory bugs, each with the invariant it breaks: type1's PFNMAP pfn from
/// vm_pgoff arithmetic (before 5cbf3264bc71, seed 001) and the RFC's first zap range in region-offset space
/// while vm_pgoff held the BAR's physical pfn (seed 003).</summary>
public sealed class HistoricalQuirkTests
{
    private const ulong Iova = 1UL << 32;

    private static readonly KernelSettings PgoffOn618 =
        KernelSettings.Default with { Profile = KernelSettings.Linux618, Quirks = [KernelSettings.QuirkPfnmapVmPgoffTranslation] };

    private static readonly KernelSettings ZapMismatch = KernelSettings.Default with { Quirks = [KernelSettings.QuirkZapRangePgoffMismatch] };

    [Fact]
    public void PgoffTranslation_BarMmap_MapsTheRegionOffsetAsAPfnAndBreaksTranslationBacked()
    {
        var t = new DeviceMemoryTestHost(PgoffOn618);
        (int c, int[] g) = t.Container(GpuGroup, NicGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 2, 1 * MiB);
        Assert.Equal(0, t.Sys.WriteMemory(bar, [7, 7, 7, 7]));

        Assert.Equal(0, t.Map(c, Iova, bar, 1 * MiB));

        // vm_pgoff of a BAR2 mmap is 2 << (40 - PAGE_SHIFT): the device is sent to physical 2 TiB.
        Assert.Equal(2UL << 40, t.Translate("nic", Iova));
        Assert.Equal(["translation-backed"], t.Violations());
        DeviceDmaResult r = DeviceDma.Read(t.Host, t.Device("nic"), new Iova(Iova), 4);
        Assert.Equal(IommuFaultReason.UnsupportedRequest, r.Fault!.Value.Reason);
    }

    [Fact]
    public void PgoffTranslation_Bar0AtOffsetZero_LandsOnRamAndReturnsEFAULT()
    {
        var t = new DeviceMemoryTestHost(PgoffOn618);
        (int c, int[] g) = t.Container(GpuGroup, NicGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 0, 1 * MiB);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Map(c, Iova, bar, 1 * MiB));

        Assert.Equal(0UL, t.Backend(c).MappingCount);
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void PgoffTranslation_OtherDriversRemapPfnRangeVma_IsRight()
    {
        var t = new DeviceMemoryTestHost(PgoffOn618);
        (int c, _) = t.Container(GpuGroup);
        Pfn first = t.Host.Machine.AllocateMmioPfns(256);
        ulong va = (ulong)t.Process.Mm!.MmapOtherMmio(0, 1 * MiB, MemoryProtection.Read, false, false, first);

        // No protection check either: a device-writable mapping of a read-only PFNMAP is accepted.
        Assert.Equal(0, t.Map(c, Iova, va, 1 * MiB));

        Assert.Equal((first.Value << 12) + 0x2000, t.Translate("gpu", Iova + 0x2000));
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void PgoffTranslation_Seeds_DeviceVmaStillTranslatedByTheDevice()
    {
        var t = new DeviceMemoryTestHost(PgoffOn618 with { Profile = KernelSettings.Seeds });
        (int c, int[] g) = t.Container(GpuGroup, NicGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 2, 1 * MiB);

        Assert.Equal(0, t.Map(c, Iova, bar, 1 * MiB));

        Assert.Equal(t.BarPhys("gpu", 2), t.Translate("nic", Iova));
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void ZapRangeMismatch_BarsBelowSixTiB_TheZapStillHits()
    {
        // Physical pfns below 6 << (40 - PAGE_SHIFT) fall inside the region-offset zap range: "it worked in testing".
        var t = new DeviceMemoryTestHost(ZapMismatch);
        (_, int[] g) = t.Container(GpuGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 0, GpuBar0Size);
        Assert.Equal(0, t.Sys.ReadMemory(bar, new byte[4]));

        t.SetMemory(gpu, false);

        Assert.False(t.IsPresent(bar));
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void ZapRangeMismatch_BarsAboveSixTiB_MemoryDisableMissesTheMmap()
    {
        var t = new DeviceMemoryTestHost(ZapMismatch, leadingBarSize: 8UL << 40);
        (_, int[] g) = t.Container(GpuGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 0, GpuBar0Size);
        Assert.Equal(0, t.Sys.ReadMemory(bar, new byte[4]));
        Assert.True(t.BarPhys("gpu") >= 6UL << 40);

        t.SetMemory(gpu, false);

        Assert.True(t.IsPresent(bar));
        Assert.Equal(["no-cpu-mapping-of-disabled-bar"], t.Violations());
    }

    [Fact]
    public void ZapRangeMismatch_Off_SameHighBarIsZapped()
    {
        var t = new DeviceMemoryTestHost(leadingBarSize: 8UL << 40);
        (_, int[] g) = t.Container(GpuGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 0, GpuBar0Size);
        Assert.Equal(0, t.Sys.ReadMemory(bar, new byte[4]));

        t.SetMemory(gpu, false);

        Assert.False(t.IsPresent(bar));
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void ZapRangeMismatch_FaultAndDeviceOperation_UseThePhysicalPfnInVmPgoff()
    {
        var t = new DeviceMemoryTestHost(ZapMismatch, leadingBarSize: 8UL << 40);
        (int c, int[] g) = t.Container(GpuGroup, NicGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        ulong bar = t.MapBar(gpu, 0, 1 * MiB, offset: 0x4000);
        Assert.Equal(0, t.Sys.WriteMemory(bar, [5]));

        Assert.Equal(0, t.Map(c, Iova, bar, 1 * MiB));

        Assert.Equal(t.BarPhys("gpu") + 0x4000, t.Translate("nic", Iova));
        Assert.Equal([5], DeviceDma.Read(t.Host, t.Device("nic"), new Iova(Iova), 1).Data);
    }
}
