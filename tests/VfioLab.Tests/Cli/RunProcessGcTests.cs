using System.Runtime;
using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary>The no-GC region a <c>run</c> process starts with (<see cref="RunProcessGc"/>) is for <c>run</c> alone:
/// any other command line (the long-running <c>fuzz</c> and <c>serve</c>, or none) leaves the collector as it is. A
/// <c>run</c> line is not tried here: the region would be this test process's, shared by every test.</summary>
public sealed class RunProcessGcTests
{
    [Theory]
    [InlineData("")]
    [InlineData("fuzz --seconds 1")]
    [InlineData("serve host.yaml --socket s")]
    [InlineData("list")]
    [InlineData("--help run")]
    [InlineData("Run")]
    public void EnterFor_NotARunCommandLine_LeavesTheCollectorAsItIs(string line)
    {
        GCLatencyMode before = GCSettings.LatencyMode;

        Assert.False(RunProcessGc.EnterFor(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)));

        Assert.Equal(before, GCSettings.LatencyMode);
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }
}
