using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Pci;
using VfioLab.Tests.DeviceMemory;
using static VfioLab.Tests.DeviceMemory.DeviceMemoryTestHost;

namespace VfioLab.Tests.Pci;

/// <summary>VFIO_DEVICE_GET_PCI_HOT_RESET_INFO and VFIO_DEVICE_PCI_HOT_RESET (v6.18 vfio_pci_core.c): the
/// slot's functions with their groups; a reset needs every function of the slot bound to vfio-pci and the
/// fd of every affected group, takes each device's memory_lock with a try-lock, zaps BAR mmaps, resets
/// the slot and restores each function's config state.</summary>
public sealed class HotResetTests
{
    private static (DeviceMemoryTestHost T, int Gpu, int Audio, int[] Groups) GpuSlot()
    {
        var t = new DeviceMemoryTestHost();
        (_, int[] groups) = t.Container(GpuGroup, GpuAudioGroup);
        int gpu = t.DeviceFd(groups[0], DeviceMemoryTestHost.Gpu);
        int audio = t.DeviceFd(groups[1], GpuAudio);
        return (t, gpu, audio, groups);
    }

    private static VfioPciDependentDevice Entry(byte[] buffer, int i)
    {
        VfioPciDependentDevice.TryRead(buffer.AsSpan(VfioPciHotResetInfo.Offsets.Devices + (i * VfioPciDependentDevice.SizeOf)), out VfioPciDependentDevice d);
        return d;
    }

    [Fact]
    public void GetHotResetInfo_RoomForSlot_ListsEachFunctionWithItsGroup()
    {
        (DeviceMemoryTestHost t, int gpu, _, _) = GpuSlot();

        Assert.Equal(0, t.HotResetInfo(gpu, 12 + 16, out byte[] b));

        VfioPciHotResetInfo.TryRead(b, out VfioPciHotResetInfo hdr);
        Assert.Equal(2u, hdr.Count);
        Assert.Equal(0u, hdr.Flags);
        Assert.Equal(new VfioPciDependentDevice { GroupId = GpuGroup, Segment = 0, Bus = 5, Devfn = 0 }, Entry(b, 0));
        Assert.Equal(new VfioPciDependentDevice { GroupId = GpuAudioGroup, Segment = 0, Bus = 5, Devfn = 1 }, Entry(b, 1));
    }

    [Fact]
    public void GetHotResetInfo_SlotWithHostDriver_ListsTheHostBoundFunctionToo()
    {
        var t = new DeviceMemoryTestHost();
        (_, int[] g) = t.Container(MixedGroup);
        int d = t.DeviceFd(g[0], Mixed);

        Assert.Equal(0, t.HotResetInfo(d, 12 + 16, out byte[] b));

        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(VfioPciHotResetInfo.Offsets.Count)));
        Assert.Equal((uint)MixedHostGroup, Entry(b, 1).GroupId);
        Assert.Equal(1, Entry(b, 1).Devfn);
    }

    [Fact]
    public void GetHotResetInfo_ArrayTooSmall_ReturnsENOSPCWithCountAndNoEntries()
    {
        (DeviceMemoryTestHost t, int gpu, _, _) = GpuSlot();

        long r = t.HotResetInfo(gpu, 12 + 8, out byte[] b);

        Assert.Equal(Errno.ENOSPC.AsReturn(), r);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(VfioPciHotResetInfo.Offsets.Count)));
        Assert.All(b[12..], x => Assert.Equal(0, x));
    }

    [Fact]
    public void GetHotResetInfo_ArgszBelowHeader_ReturnsEINVALAndWritesNothing()
    {
        (DeviceMemoryTestHost t, int gpu, _, _) = GpuSlot();
        byte[] b = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(b, 11);

        Assert.Equal(Errno.EINVAL.AsReturn(), t.Sys.Ioctl(gpu, VfioIoctl.DeviceGetPciHotResetInfo, b));

        Assert.Equal(11u, BinaryPrimitives.ReadUInt32LittleEndian(b));
        Assert.All(b[4..], x => Assert.Equal(0, x));
    }

    [Fact]
    public void GetHotResetInfo_HeaderNotReadable_ReturnsEFAULT()
    {
        (DeviceMemoryTestHost t, int gpu, _, _) = GpuSlot();

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Sys.Ioctl(gpu, VfioIoctl.DeviceGetPciHotResetInfo, new byte[8]));
    }

    [Fact]
    public void GetHotResetInfo_ArgszLargerThanBuffer_ReturnsEFAULTAndLeavesHeader()
    {
        (DeviceMemoryTestHost t, int gpu, _, _) = GpuSlot();
        byte[] b = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(b, 12 + 16);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Sys.Ioctl(gpu, VfioIoctl.DeviceGetPciHotResetInfo, b));

        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(VfioPciHotResetInfo.Offsets.Count)));
    }

    [Fact]
    public void HotReset_EveryGroupProven_ZapsBothFunctionsResetsSlotAndRestoresDecode()
    {
        (DeviceMemoryTestHost t, int gpu, int audio, int[] g) = GpuSlot();
        ulong gpuBar = t.MapBar(gpu, 0, GpuBar0Size);
        ulong audioBar = t.MapBar(audio, 0, MiB);
        Assert.Equal(0, t.Sys.WriteMemory(gpuBar, [1, 2, 3, 4]));
        Assert.Equal(0, t.Sys.ReadMemory(audioBar, new byte[4]));
        PciFunction f0 = t.Function(DeviceMemoryTestHost.Gpu);
        PciFunction f1 = t.Function(GpuAudio);
        (int r0, int r1) = (f0.ResetCount, f1.ResetCount);

        Assert.Equal(0, t.HotReset(gpu, g));

        Assert.False(t.IsPresent(gpuBar));
        Assert.False(t.IsPresent(audioBar));
        Assert.Equal((r0 + 1, r1 + 1), (f0.ResetCount, f1.ResetCount));
        Assert.True(f0.MemoryEnabled && f1.MemoryEnabled);
        Assert.False(f0.InReset || f1.InReset);
        byte[] back = new byte[4];
        Assert.Equal(0, t.Sys.ReadMemory(gpuBar, back));
        Assert.Equal([1, 2, 3, 4], back);
        Assert.Empty(t.Violations());
    }

    [Fact]
    public void HotReset_ClosedFunctionOfTheSlot_IsResetWhenItsGroupIsProven()
    {
        var t = new DeviceMemoryTestHost();
        (_, int[] g) = t.Container(GpuGroup, GpuAudioGroup);
        int gpu = t.DeviceFd(g[0], DeviceMemoryTestHost.Gpu);
        int before = t.Function(GpuAudio).ResetCount;

        Assert.Equal(0, t.HotReset(gpu, g));

        Assert.Equal(before + 1, t.Function(GpuAudio).ResetCount);
    }

    [Fact]
    public void HotReset_GroupOfSecondFunctionMissing_ReturnsEINVALAfterZappingTheFirstAndResetsNothing()
    {
        (DeviceMemoryTestHost t, int gpu, int audio, int[] g) = GpuSlot();
        ulong gpuBar = t.MapBar(gpu, 0, GpuBar0Size);
        ulong audioBar = t.MapBar(audio, 0, MiB);
        Assert.Equal(0, t.Sys.ReadMemory(gpuBar, new byte[4]));
        Assert.Equal(0, t.Sys.ReadMemory(audioBar, new byte[4]));
        int resets = t.Function(DeviceMemoryTestHost.Gpu).ResetCount;

        Assert.Equal(Errno.EINVAL.AsReturn(), t.HotReset(gpu, [g[0]]));

        // The dev_set is walked in order: 05:00.0 is owned, locked and zapped before 05:00.1 fails.
        Assert.False(t.IsPresent(gpuBar));
        Assert.True(t.IsPresent(audioBar));
        Assert.Equal(resets, t.Function(DeviceMemoryTestHost.Gpu).ResetCount);
        Assert.False(t.PciState("gpu").MemoryLock.IsWriteLockHeld);
        Assert.Equal(0, t.Sys.ReadMemory(gpuBar, new byte[4]));
    }

    [Fact]
    public void HotReset_SlotHasAHostBoundFunction_ReturnsEINVALBeforeTouchingAnything()
    {
        var t = new DeviceMemoryTestHost();
        (_, int[] g) = t.Container(MixedGroup);
        int d = t.DeviceFd(g[0], Mixed);
        ulong bar = t.MapBar(d, 0, MiB);
        Assert.Equal(0, t.Sys.ReadMemory(bar, new byte[4]));
        int resets = t.Function(Mixed).ResetCount;

        Assert.Equal(Errno.EINVAL.AsReturn(), t.HotReset(d, g));

        Assert.True(t.IsPresent(bar));
        Assert.Equal(resets, t.Function(Mixed).ResetCount);
    }

    [Fact]
    public void HotReset_MemoryLockContended_ReturnsEBUSYAndDropsEveryLockTaken()
    {
        (DeviceMemoryTestHost t, int gpu, _, int[] g) = GpuSlot();
        int resets = t.Function(DeviceMemoryTestHost.Gpu).ResetCount;
        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var reader = new Thread(() =>
        {
            t.PciState("audio").MemoryLock.EnterReadLock();
            held.Set();
            release.Wait();
            t.PciState("audio").MemoryLock.ExitReadLock();
        });
        reader.Start();
        held.Wait();
        try
        {
            Assert.Equal(Errno.EBUSY.AsReturn(), t.HotReset(gpu, g));
        }
        finally
        {
            release.Set();
            reader.Join();
        }

        Assert.Equal(resets, t.Function(DeviceMemoryTestHost.Gpu).ResetCount);
        Assert.True(t.PciState("gpu").MemoryLock.TryEnterWriteLock(0));
        t.PciState("gpu").MemoryLock.ExitWriteLock();
    }

    [Theory]
    [InlineData(0u, 1u, null)]   // count 0: only cdev-opened devices may pass no groups
    [InlineData(1u, 0u, null)]   // flags must be 0
    [InlineData(0u, 3u, null)]   // more fds than functions in the slot
    [InlineData(0u, 2u, 11u)]    // argsz below the header
    public void HotReset_BadHeader_ReturnsEINVALAndResetsNothing(uint flags, uint count, uint? argsz)
    {
        (DeviceMemoryTestHost t, int gpu, _, int[] g) = GpuSlot();
        int resets = t.Function(DeviceMemoryTestHost.Gpu).ResetCount;

        Assert.Equal(Errno.EINVAL.AsReturn(), t.HotReset(gpu, [g[0], g[1], g[0]], count, flags, argsz));

        Assert.Equal(resets, t.Function(DeviceMemoryTestHost.Gpu).ResetCount);
    }

    [Fact]
    public void HotReset_GroupFdsNotReadable_ReturnsEFAULT()
    {
        (DeviceMemoryTestHost t, int gpu, _, _) = GpuSlot();
        byte[] b = new byte[VfioPciHotReset.SizeOf + 4];
        new VfioPciHotReset { Argsz = (uint)b.Length, Count = 2 }.Write(b);

        Assert.Equal(Errno.EFAULT.AsReturn(), t.Sys.Ioctl(gpu, VfioIoctl.DevicePciHotReset, b));
    }

    [Fact]
    public void HotReset_FdNotOpen_ReturnsEBADF()
    {
        (DeviceMemoryTestHost t, int gpu, _, int[] g) = GpuSlot();
        int resets = t.Function(DeviceMemoryTestHost.Gpu).ResetCount;

        Assert.Equal(Errno.EBADF.AsReturn(), t.HotReset(gpu, [g[0], 999]));

        Assert.Equal(resets, t.Function(DeviceMemoryTestHost.Gpu).ResetCount);
    }

    [Fact]
    public void HotReset_FdIsNotAGroup_ReturnsEINVAL()
    {
        (DeviceMemoryTestHost t, int gpu, int audio, int[] g) = GpuSlot();

        Assert.Equal(Errno.EINVAL.AsReturn(), t.HotReset(gpu, [g[0], audio]));

        Assert.Equal(0, t.HotReset(gpu, g));
    }
}
