using System.Diagnostics;
using VfioLab.Abi;
using VfioLab.Cli.Commands.Conform;

namespace VfioLab.Tests.Cli;

/// <summary>
/// The rig's agent (conformance/agent/rig-agent.c, built by conformance/agent/build.sh with gcc -static) driven through
/// <see cref="AgentProcess"/> against this machine's kernel: each system call's result and errno come back, memory
/// reads and writes reach the agent's own address space, fork makes a real child with a copy of it, and exit ends the
/// process. No VFIO is needed. The build needs gcc and a static libc (conformance/setup.sh installs them): without
/// them these tests fail, saying so.
/// </summary>
public sealed class AgentProcessTests
{
    private static readonly Lazy<string> Agent = new(BuildAgent);

    [Fact]
    public void SystemCalls_AnswerWithTheKernelsResultAndErrno()
    {
        (AgentHost host, AgentProcess agent) = AgentHost.Start(Agent.Value);
        using (host)
        {
            Assert.NotEqual(Environment.ProcessId, agent.Pid);
            Assert.Equal(Errno.ENOENT.AsReturn(), agent.Open("/nonexistent/rig-agent-test"));
            Assert.Equal(Errno.EBADF.AsReturn(), agent.Close(9999));
            int fd = agent.Open("/dev/null");
            Assert.True(fd >= 0, $"open /dev/null: {fd}");
            // An ioctl with a buffer: /dev/null is no terminal.
            byte[] termios = new byte[60];
            Assert.Equal(Errno.ENOTTY.AsReturn(), agent.Ioctl(fd, 0x5401, termios));
            Assert.Equal(0, agent.Close(fd));
            long e = agent.CreateEventFd();
            Assert.True(e >= 0, $"eventfd: {e}");
            Assert.Equal(Errno.EAGAIN.AsReturn(), agent.ReadEventFd((int)e));
            Assert.False(agent.WaitReadable((int)e, TimeSpan.Zero));

            long a = agent.Mmap(0, 0x2000, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
            Assert.True(a > 0, $"mmap: {a}");
            Assert.Equal(0, agent.WriteMemory((ulong)a + 0xffe, [1, 2, 3, 4]));
            byte[] back = new byte[4];
            Assert.Equal(0, agent.ReadMemory((ulong)a + 0xffe, back));
            Assert.Equal([1, 2, 3, 4], back);
            Assert.Equal(0L, agent.LockedVmBytes());
            Assert.Equal(0, agent.Munmap((ulong)a, 0x2000));
            // Unmapped now: EFAULT, and the buffer is left as it was.
            Assert.Equal(Errno.EFAULT.AsReturn(), agent.ReadMemory((ulong)a, back));
            Assert.Equal([1, 2, 3, 4], back);
            Assert.Equal(Errno.EINVAL.AsReturn(), agent.Munmap((ulong)a + 1, 0x1000));
            Assert.Equal(0L, agent.SetMemlockLimit(64 << 10));

            agent.Exit();
            Assert.True(agent.Exited);
            Assert.Equal(Errno.ESRCH.AsReturn(), agent.Open("/dev/null"));
        }
    }

    [Fact]
    public void Fork_MakesARealChild_WithACopyOfTheMemory_AndExitEndsIt()
    {
        (AgentHost host, AgentProcess parent) = AgentHost.Start(Agent.Value);
        using (host)
        {
            long a = parent.Mmap(0, 0x1000, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
            Assert.True(a > 0);
            Assert.Equal(0, parent.WriteMemory((ulong)a, [0x11]));
            int fd = parent.Open("/dev/null");

            long pid = parent.Fork(out AgentProcess? child);
            Assert.NotNull(child);
            Assert.Equal(pid, child.Pid);
            Assert.NotEqual(parent.Pid, child.Pid);
            Assert.Equal(parent.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), ParentOf(child.Pid));

            // The child's memory is a copy: its write is its own.
            byte[] b = new byte[1];
            Assert.Equal(0, child.ReadMemory((ulong)a, b));
            Assert.Equal(0x11, b[0]);
            Assert.Equal(0, child.WriteMemory((ulong)a, [0x22]));
            Assert.Equal(0, parent.ReadMemory((ulong)a, b));
            Assert.Equal(0x11, b[0]);
            // Its fd table is a copy: closing its fd leaves the parent's open.
            Assert.Equal(0, child.Close(fd));
            Assert.Equal(Errno.EBADF.AsReturn(), child.Close(fd));

            child.Exit();
            Assert.Equal(Errno.ESRCH.AsReturn(), child.ReadMemory((ulong)a, b));
            Assert.Equal(0, parent.Close(fd));
            parent.Exit();
        }
    }

    private static string ParentOf(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("PPid:", StringComparison.Ordinal))
            {
                return line["PPid:".Length..].Trim();
            }
        }
        throw new InvalidOperationException($"/proc/{pid}/status has no PPid");
    }

    // conformance/agent/build.sh of this checkout, into a cache of the test's own.
    private static string BuildAgent()
    {
        string? rig = null;
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null && rig is null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "conformance", "agent", "build.sh");
            rig = File.Exists(candidate) ? candidate : null;
        }
        Assert.True(rig is not null, "conformance/agent/build.sh not found above the test assembly");
        var start = new ProcessStartInfo(rig) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment["RIG_CACHE"] = Path.Combine(Path.GetTempPath(), "vfiolab-agent-test");
        using Process p = Process.Start(start)!;
        Task<string> err = p.StandardError.ReadToEndAsync();
        string path = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0 && File.Exists(path), $"the rig's agent did not build (gcc and a static libc are needed: conformance/setup.sh): {err.Result}");
        return path;
    }
}
