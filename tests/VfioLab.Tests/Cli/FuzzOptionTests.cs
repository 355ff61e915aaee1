using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary><c>vfiolab fuzz</c>'s budget: a finite positive number of seconds or a number of rounds, never both;
/// anything else is exit 2 naming the option, before any round runs.</summary>
public sealed class FuzzOptionTests
{
    [Theory]
    [InlineData("NaN")]
    [InlineData("nan")]
    [InlineData("Infinity")]
    [InlineData("-Infinity")]
    [InlineData("∞")]
    [InlineData("-1")]
    [InlineData("0")]
    [InlineData("1e9")]
    [InlineData("")]
    public void Fuzz_SecondsNotAFinitePositiveBudget_ExitsTwo(string value)
    {
        (int code, string output, string err) = Cli.Run("fuzz", "--seconds", value);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains("--seconds", err, StringComparison.Ordinal);
        Assert.DoesNotContain("fuzz:", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--rounds", "2", "--seconds", "5")]
    [InlineData("--seconds", "5", "--rounds", "2")]
    public void Fuzz_RoundsAndSeconds_IsRefusedAsAlternatives(string a, string b, string c, string d)
    {
        (int code, string output, string err) = Cli.Run("fuzz", a, b, c, d);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains("--rounds and --seconds are alternatives: give one", err, StringComparison.Ordinal);
        Assert.Empty(output);
    }

    [Theory]
    [InlineData("linux-6.1")]
    [InlineData("linux-6.12")]
    [InlineData("no-such-kernel")]
    public void Fuzz_ProfileTheReferenceDoesNotModel_ExitsTwoBeforeAnyRound(string profile)
    {
        // The naive reference models seeds and linux-6.18 only: an LTS profile's errno choices would show as
        // violations that are not the model's.
        (int code, string output, string err) = Cli.Run("fuzz", "--rounds", "1", "--profile", profile);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains("--profile", err, StringComparison.Ordinal);
        Assert.DoesNotContain("violations", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--seed", "0x")]
    [InlineData("--seed", "18446744073709551616")]
    [InlineData("--rounds", "1.5")]
    [InlineData("--rounds", "-2")]
    public void Fuzz_BadNumber_ExitsTwoNamingTheOption(string option, string value)
    {
        (int code, _, string err) = Cli.Run("fuzz", option, value);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains($"{option} '{value}'", err, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", err, StringComparison.Ordinal);
    }
}
