using System.Text;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;

namespace VfioLab.Tests.Robustness;

/// <summary>Regression (scenario campaign, seeds 86 and others): a scenario file that is not valid UTF-8 was read
/// with U+FFFD replacements and accepted; it is refused at the line and column of the first bad byte.</summary>
public sealed class ScenarioFileEncodingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vfiolab-utf8-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(new byte[] { 0xff })]
    [InlineData(new byte[] { 0xc3 })]
    [InlineData(new byte[] { 0xed, 0xa0, 0x80 })]
    [InlineData(new byte[] { 0xc0, 0xaf })]
    public void ParseFile_InvalidUtf8InAComment_FailsAtItsLineAndColumn(byte[] bad)
    {
        string path = Path.Combine(_dir, "bad.yaml");
        byte[] head = Encoding.UTF8.GetBytes("vfiolab: 1\nname: x # caf");
        byte[] tail = Encoding.UTF8.GetBytes("\nhost: { memory: 1GiB }\nsteps: []\n");
        File.WriteAllBytes(path, [.. head, .. bad, .. tail]);
        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioParser.ParseFile(path));
        Assert.Equal((path, 2, 14), (e.File, e.Line, e.Column));
        Assert.Contains("not valid UTF-8", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseFile_Utf8WithBomAndMultibyteText_Parses()
    {
        string path = Path.Combine(_dir, "good.yaml");
        File.WriteAllBytes(path, [0xef, 0xbb, 0xbf, .. Encoding.UTF8.GetBytes("vfiolab: 1\nname: café # ünïcode\nhost: { memory: 1GiB }\nsteps: []\n")]);
        Assert.Equal("café", ScenarioParser.ParseFile(path).Name);
    }
}
