using VfioLab.Cli;

namespace VfioLab.Tests.Robustness;

/// <summary><c>vfiolab fuzz</c>: runs the campaigns for a number of rounds from a seed, prints a progress bar and
/// the figures, exits 0 without violations; bad options are usage errors.</summary>
public sealed class FuzzCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vfiolab-fuzz-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Fuzz_TwoRounds_PrintsFiguresAndExitsZero()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApplication.Run(["fuzz", "--rounds", "2", "--seed", "0x10", "--out", _dir], stdout, stderr);
        string text = stdout.ToString();
        Assert.True(code == ExitCodes.Success, text + stderr);
        Assert.Contains("seed 16, 2 rounds", text, StringComparison.Ordinal);
        Assert.Contains("[####################] 100%", text, StringComparison.Ordinal);
        Assert.Contains("sequences: 4 (96 operations)", text, StringComparison.Ordinal);
        Assert.Contains($"ioctls: {4 * VfioLab.Fuzzing.IoctlCampaign.CallsPerSeed}", text, StringComparison.Ordinal);
        Assert.Contains("scenario files: 2", text, StringComparison.Ordinal);
        Assert.Contains("violations: 0", text, StringComparison.Ordinal);
        Assert.Matches("distinct errno paths: [1-9][0-9]+", text);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Theory]
    [InlineData("--seconds", "-1")]
    [InlineData("--seconds", "soon")]
    [InlineData("--seed", "-3")]
    [InlineData("--rounds", "0")]
    [InlineData("--campaign", "everything")]
    [InlineData("--profile", "linux-5.4")]
    public void Fuzz_BadOption_IsAUsageError(string option, string value)
    {
        var stderr = new StringWriter();
        Assert.Equal(ExitCodes.UsageOrInputError, CliApplication.Run(["fuzz", option, value], new StringWriter(), stderr));
        Assert.Contains(option, stderr.ToString(), StringComparison.Ordinal);
    }
}
