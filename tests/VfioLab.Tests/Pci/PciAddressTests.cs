using VfioLab.Pci;

namespace VfioLab.Tests.Pci;

public sealed class PciAddressTests
{
    [Fact]
    public void TryParse_FullForm_RoundTrips()
    {
        Assert.True(PciAddress.TryParse("0000:01:1f.7", out PciAddress a));
        Assert.Equal(new PciAddress(0, 1, 0x1f, 7), a);
        Assert.Equal("0000:01:1f.7", a.ToString());
    }

    [Fact]
    public void TryParse_WithoutDomain_DefaultsToZero()
    {
        Assert.True(PciAddress.TryParse("3b:00.1", out PciAddress a));
        Assert.Equal("0000:3b:00.1", a.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("0000:01:20.0")]
    [InlineData("0000:01:00.8")]
    [InlineData("0000:100:00.0")]
    [InlineData("01:00")]
    [InlineData("zz:00.0")]
    public void TryParse_Malformed_ReturnsFalse(string text)
    {
        Assert.False(PciAddress.TryParse(text, out _));
    }

    [Fact]
    public void SameSlot_FunctionsOfOneDevice_TrueButOtherDeviceOnlySameBus()
    {
        PciAddress f0 = PciAddress.Parse("0000:01:00.0");
        Assert.True(f0.SameSlot(PciAddress.Parse("0000:01:00.1")));
        Assert.False(f0.SameSlot(PciAddress.Parse("0000:01:01.0")));
        Assert.True(f0.SameBus(PciAddress.Parse("0000:01:01.0")));
        Assert.False(f0.SameBus(PciAddress.Parse("0001:01:00.0")));
    }
}
