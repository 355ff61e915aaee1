using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace VfioLab.Preload.Tests;

/// <summary>
/// A running <c>vfiolab serve HOST.yaml --socket PATH</c> (the VfioLab.Cli executable this project references), not
/// under the preload. <see cref="Stop"/> interrupts it as a user would (SIGINT) and returns its report.
/// </summary>
internal sealed class ServeProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly string _dir;
    private bool _stopped;
    private bool _disposed;

    private ServeProcess(string host, string[] extra)
    {
        _dir = Directory.CreateTempSubdirectory("vfiolab-serve-").FullName;
        Socket = Path.Combine(_dir, "s.sock");
        var cli = Path.Combine(AppContext.BaseDirectory, "VfioLab.Cli");
        _process = new Process
        {
            StartInfo = ProcessRun.Info(cli, ["serve", host, "--socket", Socket, .. extra],
                new Dictionary<string, string?> { ["LD_PRELOAD"] = null, ["VFIOLAB_SOCKET"] = null, ["NO_COLOR"] = "1" }, null),
        };
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (_stdout) { _stdout.AppendLine(e.Data); } } };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_stderr) { _stderr.AppendLine(e.Data); } } };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Socket { get; }

    /// <summary>Starts the server (with <paramref name="extra"/> options, such as <c>--record FILE</c>) and waits (up to
    /// a minute: the first start JIT-compiles) until it accepts.</summary>
    public static ServeProcess Start(string host, params string[] extra)
    {
        var server = new ServeProcess(host, extra);
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromMinutes(1))
        {
            if (server._process.HasExited)
            {
                server._process.WaitForExit();
                throw new InvalidOperationException($"vfiolab serve exited {server._process.ExitCode} before accepting:\n{server.Output}");
            }

            if (File.Exists(server.Socket) && CanConnect(server.Socket))
            {
                return server;
            }

            Thread.Sleep(50);
        }

        server.Dispose();
        throw new TimeoutException($"vfiolab serve did not accept on {server.Socket} within a minute:\n{server.Output}");
    }

    public string Output
    {
        get
        {
            lock (_stdout)
            {
                lock (_stderr)
                {
                    return _stdout.ToString() + _stderr.ToString();
                }
            }
        }
    }

    /// <summary>SIGINT, then the exit code and everything the server printed (its report of the model's state).</summary>
    public (int ExitCode, string Report) Stop()
    {
        _stopped = true;
        ProcessRun.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (!_process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
            throw new TimeoutException($"vfiolab serve did not stop within 30 s of SIGINT:\n{Output}");
        }

        _process.WaitForExit();
        return (_process.ExitCode, Output);
    }

    /// <summary>SIGKILL: the server goes without a word to any connection.</summary>
    public void Kill()
    {
        _stopped = true;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_stopped && !_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // the server's tree may still be in use by a killed server's last write: a temp dir left behind
        }
    }

    private static bool CanConnect(string path)
    {
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
