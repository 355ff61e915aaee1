using System.Diagnostics;
using VfioLab.Lab;
using VfioLab.Tests.Abi;

namespace VfioLab.Tests.Serve;

/// <summary>Lifetimes with a client that is another process (tests/VfioLab.Tests/Serve/clients/wire_client.py, the
/// protocol spoken from Python): its exit is the simulated process's exit, and its forked child is adopted.</summary>
public sealed class ServeLifetimeTests
{
    private static Process StartClient(ServeFixture f, string mode)
    {
        string script = Path.Combine(ConformanceProgram.FindRepositoryRoot(), "tests", "VfioLab.Tests", "Serve", "clients", "wire_client.py");
        var info = new ProcessStartInfo("python3", [script, f.Server.SocketPath, mode])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // A missing python3 fails here, loudly (the CI image has it).
        return Process.Start(info)!;
    }

    private static string ReadLine(Process p)
    {
        string? line = p.StandardOutput.ReadLine();
        if (line is null)
        {
            Assert.Fail("the client ended early: " + p.StandardError.ReadToEnd());
        }
        return line;
    }

    [Fact]
    public void RealProcessExit_ExitsTheSimulatedProcess_AndReleasesItsLockedVmAndPins()
    {
        using var f = new ServeFixture();
        using Process client = StartClient(f, "map-and-exit");
        Assert.Equal("map 0", ReadLine(client));
        LabProcess sim = f.Server.ProcessOf(client.Id)!;
        Assert.NotNull(sim);
        lock (f.Server.Gate)
        {
            Assert.Equal(1UL << 20, sim.LockedVmBytes);
            Assert.Equal(256UL, f.Host.PinnedPages);
        }
        client.StandardInput.WriteLine();
        Assert.True(client.WaitForExit(30_000));
        Assert.True(SpinWait.SpinUntil(() => { lock (f.Server.Gate) { return !sim.IsAlive && f.Host.PinnedPages == 0; } }, TimeSpan.FromSeconds(30)),
            f.Log);
        Assert.Null(f.Server.ProcessOf(client.Id));
        Assert.Contains($"client pid {client.Id}", f.Log, StringComparison.Ordinal);
        Assert.Contains("exited", f.Log, StringComparison.Ordinal);
        Assert.Empty(f.Server.Violations);
    }

    [Fact]
    public void ForkedChildCallingOnAnInheritedFile_IsAdoptedAsAForkOfItsParent()
    {
        using var f = new ServeFixture();
        using Process client = StartClient(f, "fork-child");
        string child = ReadLine(client);
        Assert.Matches(@"^child \d+ api 0$", child);
        int childPid = int.Parse(child.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal($"parent {client.Id}", ReadLine(client));
        LabProcess? adopted;
        lock (f.Server.Gate)
        {
            Assert.True(f.Host.TryGetProcess($"pid{childPid}", out adopted), f.Log);
        }
        Assert.Contains($"adopted as a fork of pid {client.Id}", f.Log, StringComparison.Ordinal);
        // The child exited (its parent reaped it): its simulated process follows.
        Assert.True(SpinWait.SpinUntil(() => { lock (f.Server.Gate) { return !adopted!.IsAlive; } }, TimeSpan.FromSeconds(30)), f.Log);
        client.StandardInput.WriteLine();
        Assert.True(client.WaitForExit(30_000));
        Assert.Empty(f.Server.Violations);
    }
}
