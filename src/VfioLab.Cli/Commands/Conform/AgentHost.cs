using System.Diagnostics;
using System.Net.Sockets;

namespace VfioLab.Cli.Commands.Conform;

/// <summary>
/// The agent processes of one scenario (<see cref="AgentProcess"/>): a listening Unix socket in a directory of its own,
/// the first agent started on it, and each child an agent forks accepted as it connects. Disposing ends every agent
/// still running: their connections close, and an agent whose connection closes exits.
/// </summary>
internal sealed class AgentHost : IDisposable
{
    private static readonly TimeSpan ConnectWait = TimeSpan.FromSeconds(60);

    private readonly string _directory;
    private readonly Socket _listener;
    private readonly Process _first;
    private readonly List<AgentProcess> _agents = [];

    private AgentHost(string directory, Socket listener, Process first)
    {
        _directory = directory;
        _listener = listener;
        _first = first;
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
        var start = new ProcessStartInfo(agentPath) { UseShellExecute = false };
        start.ArgumentList.Add(path);
        Process first = Process.Start(start) ?? throw new IOException($"could not start {agentPath}");
        var host = new AgentHost(dir, listener, first);
        return (host, host.AcceptChild());
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

    /// <summary>An agent exited: the first one is this runner's child, reaped here; a forked one is its parent's
    /// (a zombie until that one exits).</summary>
    internal void Reap(int pid)
    {
        if (pid == _first.Id)
        {
            _first.WaitForExit();
        }
    }

    public void Dispose()
    {
        foreach (AgentProcess a in _agents)
        {
            a.Abandon();
        }
        _listener.Dispose();
        if (!_first.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            _first.Kill();
            _first.WaitForExit();
        }
        _first.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
