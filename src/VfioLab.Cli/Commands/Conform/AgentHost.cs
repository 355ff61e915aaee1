using System.Diagnostics;
using System.Net.Sockets;

namespace VfioLab.Cli.Commands.Conform;

/// <summary>
/// The agent processes of one scenario (<see cref="AgentProcess"/>): a listening Unix socket in a directory of its own,
/// the agents started on it (the first process, and each other declared process), and each child an agent forks
/// accepted as it connects. Disposing ends every agent
/// still running: their connections close, and an agent whose connection closes exits.
/// </summary>
internal sealed class AgentHost : IDisposable
{
    private static readonly TimeSpan ConnectWait = TimeSpan.FromSeconds(60);

    private readonly string _directory;
    private readonly Socket _listener;
    private readonly string _agentPath;
    private readonly List<Process> _started = [];
    private readonly List<AgentProcess> _agents = [];

    private AgentHost(string agentPath, string directory, Socket listener)
    {
        _agentPath = agentPath;
        _directory = directory;
        _listener = listener;
    }

    /// <summary>The scenario's first process: the agent at <paramref name="agentPath"/> started, connected.</summary>
    /// <exception cref="IOException">The agent could not be started or did not connect.</exception>
    public static (AgentHost Host, AgentProcess First) Start(string agentPath)
    {
        if (!File.Exists(agentPath))
        {
            throw new IOException($"the rig's agent {agentPath} does not exist (conformance/agent/build.sh builds it)");
        }
        string dir = Directory.CreateTempSubdirectory("rig-agent-").FullName;
        string path = Path.Combine(dir, "socket");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(8);
        var host = new AgentHost(agentPath, dir, listener);
        return (host, host.Start());
    }

    /// <summary>Another agent started (a process of its own, not forked), connected.</summary>
    /// <exception cref="IOException">It could not be started or did not connect.</exception>
    public AgentProcess Start()
    {
        var start = new ProcessStartInfo(_agentPath) { UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(_directory, "socket"));
        _started.Add(Process.Start(start) ?? throw new IOException($"could not start {_agentPath}"));
        return AcceptChild();
    }

    /// <summary>The next agent to connect (the first, or a child just forked).</summary>
    /// <exception cref="IOException">None connected in time.</exception>
    internal AgentProcess AcceptChild()
    {
        if (!_listener.Poll(ConnectWait, SelectMode.SelectRead))
        {
            throw new IOException($"no agent connected within {ConnectWait.TotalSeconds} s");
        }
        AgentProcess agent = AgentProcess.Accept(this, _listener);
        _agents.Add(agent);
        return agent;
    }

    /// <summary>An agent exited: one this runner started is its child, reaped here; a forked one is its parent's
    /// (a zombie until that one exits).</summary>
    internal void Reap(int pid)
    {
        _started.FirstOrDefault(p => p.Id == pid)?.WaitForExit();
    }

    public void Dispose()
    {
        foreach (AgentProcess a in _agents)
        {
            a.Abandon();
        }
        _listener.Dispose();
        foreach (Process p in _started)
        {
            if (!p.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                p.Kill();
                p.WaitForExit();
            }
            p.Dispose();
        }
        Directory.Delete(_directory, recursive: true);
    }
}
