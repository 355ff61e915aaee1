using VfioLab.Serve;

namespace VfioLab.Tests.Serve;

/// <summary>
/// How the server tells that a client whose VFIO file just closed is exiting (QEMU's quit closes its container at
/// exit): then the process exits in the model before the file closes, as the kernel drops the memory before the files.
/// </summary>
public sealed class ProcExitingTests
{
    [Theory]
    [InlineData("1234 (qemu-system-x86) S 1 1234 1234 0 -1 4194560 100 0 0 0", false)]
    [InlineData("1234 (qemu-system-x86) S 1 1234 1234 0 -1 4194564 100 0 0 0", true)] // PF_EXITING (0x4) set
    [InlineData("1234 (qemu) Z 1 1234 1234 0 -1 4194560 100 0 0 0", true)]
    [InlineData("1234 (qemu) X 1 1234 1234 0 -1 4194560 100 0 0 0", true)]
    [InlineData("1234 (a) b) R 1 1234 1234 0 -1 4194560 100 0 0 0", false)] // a ')' in the name: the last one ends it
    [InlineData("1234 (cut short) S 1 1234", true)]
    [InlineData(null, true)] // /proc/PID/stat unreadable: the process is gone
    public void ParseExiting_ReadsStateAndPfExiting(string? stat, bool exiting) =>
        Assert.Equal(exiting, ProcFiles.ParseExiting(stat));

    [Fact]
    public void IsExiting_ThisProcessIsNot() => Assert.False(ProcFiles.IsExiting(Environment.ProcessId));
}
