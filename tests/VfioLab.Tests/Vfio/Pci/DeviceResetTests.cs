using VfioLab.Abi;
using VfioLab.Pci;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>VFIO_DEVICE_RESET (vfio_pci_core.c): zap BAR mmaps under memory_lock, then
/// pci_try_reset_function, which saves and restores the config state around the reset.</summary>
public sealed class DeviceResetTests
{
    [Fact]
    public void DeviceReset_ResetWorks_ReturnsZeroAndResetsFunction()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        PciFunction f = t.Function(VfioTestHost.GpuName);
        int resets = f.ResetCount;
        Assert.Equal(0, t.Sys.Ioctl(d, VfioIoctl.DeviceReset, 0));
        Assert.Equal(resets + 1, f.ResetCount);
        Assert.False(f.InReset);
        Assert.Equal(1, t.Device(VfioTestHost.GpuName).OpenCount);
    }

    [Fact]
    public void DeviceReset_MemoryEnabledWithMmap_ZapsThenRestoresDecode()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(2, BarMmapTests.WriteCommand(t, d, PciCommand.Memory));
        ulong bar = BarMmapTests.MapBar0(t, d);
        Assert.Equal(0, t.Sys.WriteMemory(bar, [1, 2, 3, 4]));
        Assert.True(t.IsPresent(bar));

        Assert.Equal(0, t.Sys.Ioctl(d, VfioIoctl.DeviceReset, 0));

        Assert.False(t.IsPresent(bar));
        Assert.True(t.Function(VfioTestHost.GpuName).MemoryEnabled);
        Assert.Equal(0, t.Sys.ReadMemory(bar, new byte[4]));
        Assert.True(t.IsPresent(bar));
    }
}
