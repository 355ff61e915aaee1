using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary>Colour on a terminal, plain text when redirected or when NO_COLOR is set; <c>fuzz</c> redraws its progress
/// bar in place on a terminal and prints it as lines otherwise.</summary>
public sealed class ConsoleOutputTests
{
    private const string Escape = "\u001b[";

    [Fact]
    public void Run_OnATerminal_ColoursTheOutcomes()
    {
        (int code, string output, _) = Cli.Run(["run", "arm-64k"], terminal: true, noColor: false);

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains($"{Escape}32mok  {Escape}0m", output, StringComparison.Ordinal);
        Assert.Contains("PASSED", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_OnATerminalWithNoColor_WritesNoEscapes()
    {
        (int code, string output, _) = Cli.Run(["run", "arm-64k"], terminal: true, noColor: true);

        Assert.Equal(ExitCodes.Success, code);
        Assert.DoesNotContain(Escape, output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_Redirected_WritesNoEscapes()
    {
        (int code, string output, _) = Cli.Run("run", "arm-64k");

        Assert.Equal(ExitCodes.Success, code);
        Assert.DoesNotContain(Escape, output, StringComparison.Ordinal);
    }

    [Fact]
    public void Error_OnATerminal_IsColouredAndRedirectedIsPlain()
    {
        Assert.Contains(Escape, Cli.Run(["run", "--frobnicate"], terminal: true, noColor: false).Err, StringComparison.Ordinal);
        Assert.DoesNotContain(Escape, Cli.Run("run", "--frobnicate").Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Fuzz_OnATerminal_RedrawsTheProgressBarInPlace()
    {
        using var dir = new TempDirectory();

        (int code, string output, _) = Cli.Run(["fuzz", "--rounds", "1", "--campaign", "ioctl", "--out", dir.Path], terminal: true, noColor: true);

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("\r  [####################] 100%", output, StringComparison.Ordinal);
        Assert.Contains($"{Escape}K", output, StringComparison.Ordinal);
        Assert.DoesNotContain("\n  [", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Fuzz_Redirected_PrintsTheProgressAsLines()
    {
        using var dir = new TempDirectory();

        (int code, string output, _) = Cli.Run("fuzz", "--rounds", "1", "--campaign", "ioctl", "--out", dir.Path);

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("\n  [####################] 100%", output, StringComparison.Ordinal);
        Assert.DoesNotContain("\r", output, StringComparison.Ordinal);
    }
}
