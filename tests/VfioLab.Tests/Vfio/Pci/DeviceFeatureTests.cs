using VfioLab.Abi;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>VFIO_DEVICE_FEATURE on a vfio-pci device without migration (vfio_ioctl_device_feature,
/// vfio_pci_core_ioctl_feature, vfio_check_feature).</summary>
public sealed class DeviceFeatureTests
{
    private const uint Get = 1u << 16;
    private const uint Set = 1u << 17;
    private const uint Probe = 1u << 18;

    [Theory]
    [InlineData(1u | Probe | Get)]          // MIGRATION
    [InlineData(2u | Probe | Set)]          // MIG_DEVICE_STATE
    [InlineData(6u | Probe | Set)]          // DMA_LOGGING_START
    [InlineData(8u | Probe | Get)]          // DMA_LOGGING_REPORT
    [InlineData(9u | Probe | Get)]          // MIG_DATA_SIZE
    [InlineData(0u | Probe | Set)]          // PCI_VF_TOKEN: not an SR-IOV PF
    [InlineData(100u | Probe)]              // unknown
    public void Probe_FeatureTheDeviceLacks_ReturnsENOTTY(uint flags)
    {
        var lab = new PciDeviceLab();
        Assert.Equal(-(long)Errno.ENOTTY, lab.Feature(lab.Open(PciDeviceLab.Nic), flags));
    }

    [Theory]
    [InlineData(3u | Probe | Set, 0L)]
    [InlineData(5u | Probe, 0L)]
    [InlineData(4u | Probe | Set, 0L)]
    [InlineData(3u | Probe | Get, -(long)Errno.EINVAL)]     // GET not supported by the feature
    [InlineData(3u, -(long)Errno.EINVAL)]                   // neither GET nor SET, no PROBE
    [InlineData(3u | Get | Set, -(long)Errno.EINVAL)]       // GET and SET without PROBE
    [InlineData(3u | (1u << 19), -(long)Errno.EINVAL)]      // unknown flag
    public void LowPowerFeatures_CheckFeatureAnswers(uint flags, long expected)
    {
        var lab = new PciDeviceLab();
        Assert.Equal(expected, lab.Feature(lab.Open(PciDeviceLab.Nic), flags));
    }

    [Fact]
    public void Feature_ArgszBelowHeader_ReturnsEINVAL()
    {
        var lab = new PciDeviceLab();
        Assert.Equal(-(long)Errno.EINVAL, lab.Feature(lab.Open(PciDeviceLab.Nic), 3u | Probe | Set, argsz: 7));
    }

    [Fact]
    public void Feature_HeaderOutsideBuffer_ReturnsEFAULT()
    {
        var lab = new PciDeviceLab();
        Assert.Equal(-(long)Errno.EFAULT, lab.Sys.Ioctl(lab.Open(PciDeviceLab.Nic), VfioIoctl.DeviceFeature, new byte[4]));
    }

    [Fact]
    public void LowPowerEntry_TwiceIsEINVAL_ExitThenEntryAgain()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(0, lab.Feature(d, 3u | Set));
        Assert.Equal(-(long)Errno.EINVAL, lab.Feature(d, 3u | Set));
        Assert.Equal(0, lab.Feature(d, 5u | Set));
        Assert.Equal(0, lab.Feature(d, 3u | Set));
    }

    [Fact]
    public void LowPowerEntryWithWakeup_BadEventfd()
    {
        var lab = new PciDeviceLab();
        int d = lab.Open(PciDeviceLab.Nic);
        Assert.Equal(-(long)Errno.EINVAL, lab.Feature(d, 4u | Set, PciDeviceLab.Fds(-1)));
        Assert.Equal(-(long)Errno.EBADF, lab.Feature(d, 4u | Set, PciDeviceLab.Fds(999)));
        Assert.Equal(-(long)Errno.EINVAL, lab.Feature(d, 4u | Set, PciDeviceLab.Fds(d)));
        Assert.Equal(-(long)Errno.EINVAL, lab.Feature(d, 4u | Set)); // no room for the struct
        Assert.Equal(0, lab.Feature(d, 4u | Set, PciDeviceLab.Fds(lab.Process.CreateEventFd())));
    }
}
