using VfioLab.Abi;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Model;

namespace VfioLab.Tests.Scenarios.Parsing;

public sealed class ScenarioValueTests
{
    private static readonly SourceLocation At = new("f.yaml", 3, 5);

    [Theory]
    [InlineData("0", 0UL)]
    [InlineData("4096", 4096UL)]
    [InlineData("0x1000", 0x1000UL)]
    [InlineData("0X7FFF_FFFF", 0x7fffffffUL)]
    [InlineData("4KiB", 4096UL)]
    [InlineData("2 MiB", 2UL << 20)]
    [InlineData("128GiB", 128UL << 30)]
    [InlineData("1TiB", 1UL << 40)]
    [InlineData("0x10MiB", 16UL << 20)]
    [InlineData("18446744073709551615", ulong.MaxValue)]
    [InlineData("0xffffffffffffffff", ulong.MaxValue)]
    [InlineData("16777215TiB", 16777215UL << 40)]
    public void TryParseSize_ValidForms_ReturnsBytes(string text, ulong expected)
    {
        Assert.True(ScalarSyntax.TryParseSize(text, out ulong value, out string? error), error);
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("18446744073709551616")]
    [InlineData("0x10000000000000000")]
    [InlineData("16777216TiB")]
    [InlineData("99999999999999999999999GiB")]
    public void TryParseSize_TooLarge_ReportsOutOfRange(string text)
    {
        Assert.False(ScalarSyntax.TryParseSize(text, out _, out string? error));
        Assert.StartsWith("value out of range", error);
    }

    [Theory]
    [InlineData("")]
    [InlineData("4KB")]
    [InlineData("4k")]
    [InlineData("-1")]
    [InlineData("0x")]
    [InlineData("1.5GiB")]
    public void TryParseSize_BadForms_Fails(string text)
    {
        Assert.False(ScalarSyntax.TryParseSize(text, out _, out string? error));
        Assert.NotNull(error);
    }

    [Theory]
    [InlineData("ram", "ram", 0UL, false)]
    [InlineData("ram+0x1000", "ram", 0x1000UL, false)]
    [InlineData("ram + 2GiB", "ram", 2UL << 30, false)]
    [InlineData("bar0-4KiB", "bar0", 4096UL, true)]
    public void TryParse_Reference_KeptUnresolved(string text, string name, ulong offset, bool negative)
    {
        Assert.True(ScenarioValue.TryParse(text, At, allowReference: true, out ScenarioValue value, out string? error), error);
        Assert.Equal((name, offset, negative), (value.Reference, value.Offset, value.NegativeOffset));
    }

    [Fact]
    public void TryParse_ReferenceWhereNumberRequired_Fails()
    {
        Assert.False(ScenarioValue.TryParse("ram", At, allowReference: false, out _, out string? error));
        Assert.Contains("expected a number", error);
    }

    [Fact]
    public void Resolve_KnownName_AddsOffset()
    {
        Assert.True(ScenarioValue.TryParse("ram+2GiB", At, true, out ScenarioValue value, out _));

        Assert.Equal(0x1_8000_0000UL, value.Resolve(n => n == "ram" ? 0x1_0000_0000UL : null));
    }

    [Fact]
    public void Resolve_UnknownName_ThrowsWithLocation()
    {
        Assert.True(ScenarioValue.TryParse("rom+1", At, true, out ScenarioValue value, out _));

        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => value.Resolve(_ => null));
        Assert.Equal((3, 5), (e.Line, e.Column));
        Assert.Equal("f.yaml:3:5: unknown name 'rom'", e.Message);
    }

    [Fact]
    public void Resolve_OffsetOverflows_ThrowsOutOfRange()
    {
        Assert.True(ScenarioValue.TryParse("ram-0x2000", At, true, out ScenarioValue value, out _));

        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => value.Resolve(_ => 0x1000));
        Assert.StartsWith("value out of range", e.Reason);
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData("on", true)]
    [InlineData("ON", true)]
    [InlineData("false", false)]
    [InlineData("off", false)]
    public void TryParseBool_Accepted_ReturnsValue(string text, bool expected)
    {
        Assert.True(ScalarSyntax.TryParseBool(text, out bool value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("yes")]
    [InlineData("1")]
    public void TryParseBool_Other_Fails(string text) => Assert.False(ScalarSyntax.TryParseBool(text, out _));

    [Theory]
    [InlineData("EINVAL", Errno.EINVAL)]
    [InlineData("E2BIG", Errno.E2BIG)]
    [InlineData("EBADFD", Errno.EBADFD)]
    public void TryParseErrno_LinuxName_ReturnsErrno(string text, Errno expected)
    {
        Assert.True(ScalarSyntax.TryParseErrno(text, out Errno errno));
        Assert.Equal(expected, errno);
    }

    [Theory]
    [InlineData("einval")]
    [InlineData("EPERM, ENOENT")]
    [InlineData("EWHATEVER")]
    [InlineData("22")]
    public void TryParseErrno_Other_Fails(string text) => Assert.False(ScalarSyntax.TryParseErrno(text, out _));

    [Theory]
    [InlineData("de ad be ef", new byte[] { 0xde, 0xad, 0xbe, 0xef })]
    [InlineData("DEADbeef", new byte[] { 0xde, 0xad, 0xbe, 0xef })]
    [InlineData("", new byte[0])]
    public void TryParseHexBytes_Valid_ReturnsBytes(string text, byte[] expected)
    {
        Assert.True(ScalarSyntax.TryParseHexBytes(text, out byte[] bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("d")]
    [InlineData("zz")]
    [InlineData("0xde")]
    public void TryParseHexBytes_Invalid_Fails(string text) => Assert.False(ScalarSyntax.TryParseHexBytes(text, out _));

    [Fact]
    public void Parse_QuotedAndPlainScalars_ReadTextually()
    {
        ScenarioDocument doc = ScenarioSamples.Parse(ScenarioSamples.WithSteps(
            "- mmap: { size: \"4KiB\", populate: \"on\", as: a }",
            "- mmap: { size: 0x1000, populate: off, as: b }"));

        Assert.Equal(4096UL, doc.Steps[0].GetValue("size").Literal);
        Assert.True(doc.Steps[0].GetBool("populate", false));
        Assert.False(doc.Steps[1].GetBool("populate", true));
    }
}
