using VfioLab.Lab;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Model;

namespace VfioLab.Tests.Scenarios.Parsing;

/// <summary>The device fields <c>ids</c>, <c>express</c>, <c>reset</c>, <c>irqs</c> and <c>rom</c>: their defaults,
/// their typed values, and a located error for each bad value.</summary>
public sealed class PciDeviceFieldTests
{
    private static string Doc(string device) => $"vfiolab: 1\ndevices:\n  - {{ name: d, address: \"0000:01:00.0\", {device} }}\nsteps: []\n";

    private static ScenarioParseException Error(string device) => ScenarioSamples.Error(Doc(device));

    [Fact]
    public void NoFields_DefaultIsTodaysDevice()
    {
        DeviceSpec d = Assert.Single(ScenarioSamples.Parse(Doc("bars: [ { index: 0, size: 1MiB } ]")).Devices);
        Assert.Equal(PciFunctionSpec.Default, d.Function);
    }

    [Fact]
    public void EduDevice_TypedValues()
    {
        DeviceSpec d = Assert.Single(ScenarioSamples.Parse(Doc(
            "bars: [ { index: 0, size: 1MiB, is64bit: false } ], ids: { vendor: 0x1234, device: 0x11e8, class: 0x00ff00, revision: 0x10 }, " +
            "express: false, reset: none, irqs: { intx: 1, msi: 1, msix: 0 }, rom: 64KiB")).Devices);
        Assert.Equal(new PciFunctionSpec(0x1234, 0x11e8, 0x00ff00, 0, 0, 0x10, false, LabPciReset.None, true, 1, 0, 0, 64 * 1024), d.Function);
    }

    [Fact]
    public void ConventionalWithoutReset_DefaultsToNone()
    {
        DeviceSpec d = Assert.Single(ScenarioSamples.Parse(Doc("express: false")).Devices);
        Assert.Equal(LabPciReset.None, d.Function!.Reset);
    }

    [Theory]
    [InlineData("irqs: { msi: 3 }", "a power of two")]
    [InlineData("irqs: { msi: 64 }", "at most 32")]
    [InlineData("irqs: { msix: 4096 }", "at most 2048")]
    [InlineData("irqs: { msix: 8 }", "which the device does not declare")]
    [InlineData("bars: [ { index: 0, size: 64 } ], irqs: { msix: 8 }", "need 0x88 bytes of BAR 0")]
    [InlineData("bars: [ { index: 0, size: 1MiB } ], irqs: { msix: 8, msix_bar: 2 }", "BAR 2")]
    [InlineData("irqs: { msix_bar: 0 }", "applies only with msix")]
    [InlineData("irqs: { intx: 2 }", "at most 1")]
    [InlineData("irqs: { lines: 1 }", "unknown key 'lines'")]
    [InlineData("express: false, reset: flr", "flr needs express: true")]
    [InlineData("reset: warm", "warm")]
    [InlineData("rom: 1KiB", "2KiB to 2GiB")]
    [InlineData("rom: 3000", "not a power of two")]
    [InlineData("ids: { vendor: 0x10000 }", "at most 65535")]
    [InlineData("ids: { class: 0x1000000 }", "at most 16777215")]
    [InlineData("ids: { vendr: 1 }", "unknown key 'vendr'")]
    public void BadValue_LocatedError(string fields, string fragment)
    {
        ScenarioParseException e = Error(fields);
        Assert.Equal(3, e.Line);
        Assert.Contains(fragment, e.Message);
    }

    [Theory]
    [InlineData("ids")]
    [InlineData("express")]
    [InlineData("irqs")]
    public void MdevWithPciField_LocatedError(string field)
    {
        string value = field == "express" ? "true" : field == "irqs" ? "{ msi: 1 }" : "{ vendor: 1 }";
        ScenarioParseException e = ScenarioSamples.Error(
            $"vfiolab: 1\ndevices:\n  - {{ name: m, driver: mdev, address: \"5a0e2f6c-1d7b-4c43-9a53-0c3bd0b6f001\", {field}: {value} }}\nsteps: []\n");
        Assert.Equal(3, e.Line);
        Assert.Contains("an mdev has no PCI config space", e.Message);
    }

    [Theory]
    [InlineData("- set_irqs: { fd: 3, index: 1, eventfds: [4], data: \"00\" }", "give only one of eventfds, data")]
    [InlineData("- set_irqs: { fd: 3, index: 1, flags: [DATA_FD] }", "unknown flag 'DATA_FD'")]
    [InlineData("- device_feature: { fd: 3, feature: 1, flags: [QUERY] }", "unknown flag 'QUERY'")]
    [InlineData("- region_read: { fd: 3, index: 7 }", "missing required field 'size'")]
    [InlineData("- region_write: { fd: 3, index: 7, data: \"zz\" }", "expected hex bytes")]
    [InlineData("- device_interrupt: { device: d, index: nmi }", "nmi")]
    [InlineData("- device_get_irq_info: { fd: 3 }", "missing required field 'index'")]
    public void BadStep_LocatedError(string step, string fragment)
    {
        ScenarioParseException e = ScenarioSamples.Error(Doc("bars: [ { index: 0, size: 1MiB } ]").Replace("steps: []\n", "steps:\n  " + step + "\n"));
        Assert.Equal(5, e.Line);
        Assert.Contains(fragment, e.Message);
    }
}
