using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Device;

public sealed class DeviceNotifierTests
{
    /// <summary>A listener that records what it was told and can unregister itself.</summary>
    private sealed class RecordingNotifier(bool unregisterOnRelease) : IVfioDeviceNotifier
    {
        public List<(string Device, VfioDeviceEvent Event)> Seen { get; } = [];

        public void Notify(VfioDevice device, VfioDeviceEvent deviceEvent)
        {
            Seen.Add((device.Name, deviceEvent));
            if (unregisterOnRelease)
            {
                device.UnregisterNotifier(this);
            }
        }
    }

    [Fact]
    public void CloseFile_LastFdOfDevice_NotifiesReleaseOnce()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, int g, int d) = t.OpenGpu();
        VfioDevice device = t.Host.Devices["gpu"].Vfio!;
        var listener = new RecordingNotifier(unregisterOnRelease: false);
        device.RegisterNotifier(listener);
        int second = (int)t.Sys.Ioctl(g, VfioLab.Abi.VfioIoctl.GroupGetDeviceFd, "0000:01:00.0\0"u8.ToArray());
        Assert.True(second >= 0);

        Assert.Equal(0, t.Sys.Close(d));
        Assert.Empty(listener.Seen);
        Assert.Equal(0, t.Sys.Close(second));

        Assert.Equal([("0000:01:00.0", VfioDeviceEvent.Release)], listener.Seen);
        Assert.Equal(0, device.OpenCount);
    }

    [Fact]
    public void Notify_ListenerUnregistersItself_ChainEmptyAfterwards()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        VfioDevice device = t.Host.Devices["gpu"].Vfio!;
        var first = new RecordingNotifier(unregisterOnRelease: true);
        var second = new RecordingNotifier(unregisterOnRelease: false);
        device.RegisterNotifier(first);
        device.RegisterNotifier(second);

        Assert.Equal(0, t.Sys.Close(d));

        Assert.Single(first.Seen);
        Assert.Single(second.Seen);
        Assert.Equal(1, device.NotifierCount);
    }

    [Fact]
    public void UnregisterNotifier_NotRegistered_IsANoOp()
    {
        var t = VfioTestHost.WithFake(out _);
        VfioDevice device = t.Host.Devices["gpu"].Vfio!;

        device.UnregisterNotifier(new RecordingNotifier(false));

        Assert.Equal(0, device.NotifierCount);
    }
}
