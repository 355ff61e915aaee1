using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary>The command line itself: <c>-h/--help</c> on every command, <c>--version</c>, and every malformed command
/// line refused with exit 2 and the reason (nothing silently ignored).</summary>
public sealed class HelpAndVersionTests
{
    [Theory]
    [InlineData("--help", "vfiolab [command] [options]")]
    [InlineData("-h", "vfiolab [command] [options]")]
    [InlineData("run --help", "vfiolab run [<scenario>...] [options]")]
    [InlineData("run -h", "vfiolab run [<scenario>...] [options]")]
    [InlineData("list -h", "vfiolab list [<filter>] [options]")]
    [InlineData("show --help", "vfiolab show <name> [options]")]
    [InlineData("fuzz -h", "vfiolab fuzz [options]")]
    [InlineData("probe --help", "vfiolab probe [options]")]
    public void Help_OnEveryCommand_PrintsItsUsageAndExitsZero(string line, string usage)
    {
        (int code, string output, string err) = Cli.Run(line.Split(' '));

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains(usage, output, StringComparison.Ordinal);
        Assert.Empty(err);
    }

    [Fact]
    public void RunHelp_ListsEveryOption()
    {
        (_, string output, _) = Cli.Run("run", "--help");

        foreach (string option in new[] { "--trace", "--no-check", "--quiet", "--report", "--json", "--junit" })
        {
            Assert.Contains(option, output, StringComparison.Ordinal);
        }
        Assert.DoesNotContain("--check ", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Version_Flag_PrintsTheInformationalVersion()
    {
        (int code, string output, _) = Cli.Run("--version");

        string expected = typeof(CliApplication).Assembly
            .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .Cast<System.Reflection.AssemblyInformationalVersionAttribute>().Single().InformationalVersion;
        Assert.Equal(ExitCodes.Success, code);
        Assert.Equal($"vfiolab {expected}", output.TrimEnd());
    }

    [Fact]
    public void NoArguments_PrintsUsageOnStandardErrorAndExitsTwo()
    {
        (int code, string output, string err) = Cli.Run();

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.Contains("Usage:", err, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownCommand_ExitsTwoNamingIt()
    {
        (int code, _, string err) = Cli.Run("rnu");

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains("rnu", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("run", "--frobnicate")]
    [InlineData("run", "-x")]
    [InlineData("list", "--all")]
    [InlineData("show", "--raw")]
    [InlineData("fuzz", "--forever")]
    [InlineData("probe", "--verbose")]
    public void UnknownOption_OnEachCommand_ExitsTwoNamingIt(string command, string option)
    {
        (int code, string output, string err) = Cli.Run(command, option);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains(option, err, StringComparison.Ordinal);
        Assert.Contains($"See 'vfiolab {command} --help'.", err, StringComparison.Ordinal);
        Assert.DoesNotContain("scenario ", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("fuzz extra")]
    [InlineData("probe extra")]
    [InlineData("show a b")]
    [InlineData("list a b")]
    public void ExtraArgument_IsRefused(string line)
    {
        (int code, _, string err) = Cli.Run(line.Split(' '));

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.NotEmpty(err);
    }

    [Fact]
    public void Run_RemovedCheckOption_ExplainsTheCheckerRunsByDefault()
    {
        (int code, string output, string err) = Cli.Run("run", "--check");

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains("--check is gone: the invariant checker runs after every step by default (--no-check turns it off)", err, StringComparison.Ordinal);
        Assert.Empty(output);
    }

    [Theory]
    [InlineData("run --json --quiet", "--quiet applies to the text report")]
    [InlineData("run --json --trace -", "--json and --trace - both want standard output")]
    [InlineData("probe --process qemu", "--process applies only with --scenario")]
    [InlineData("fuzz --rounds 2 --seconds 5", "--rounds and --seconds are alternatives")]
    public void OptionThatWouldBeIgnored_IsRefused(string line, string reason)
    {
        (int code, string output, string err) = Cli.Run(line.Split(' '));

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Contains(reason, err, StringComparison.Ordinal);
        Assert.Empty(output);
    }
}
