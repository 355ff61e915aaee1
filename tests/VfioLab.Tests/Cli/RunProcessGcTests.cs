using System.Runtime;
using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary>The no-GC region a <c>run</c> process starts with (<see cref="RunProcessGc"/>) is for <c>run</c> alone:
/// any other command line (the long-running <c>fuzz</c> and <c>serve</c>, or none) leaves the collector as it is. A
/// <c>run</c> line is not tried here: the region would be this test process's, shared by every test.</summary>
public sealed class RunProcessGcTests
{
    [Theory]
    [InlineData(new string[0])]
    [InlineData(new[] { "fuzz", "--seconds", "1" })]
    [InlineData(new[] { "serve", "host.yaml", "--socket", "s" })]
    [InlineData(new[] { "list" })]
    [InlineData(new[] { "--help", "run" })]
    [InlineData(new[] { "Run" })]
    public void EnterFor_NotARunCommandLine_LeavesTheCollectorAsItIs(string[] args)
    {
        GCLatencyMode before = GCSettings.LatencyMode;

        Assert.False(RunProcessGc.EnterFor(args));

        Assert.Equal(before, GCSettings.LatencyMode);
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }
}
