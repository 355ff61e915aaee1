using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Linux;

namespace VfioLab.Serve;

/// <summary>A simulated host served to real client processes over a Unix socket (docs/serve-protocol.md): each
/// client process becomes a simulated process mirroring it, each VFIO file it opens is one connection, and its
/// ioctls, reads and writes run on the model with their memory read and written in the real process.</summary>
/// <remarks>Calls are served one at a time across all connections (one lock around the model), as the model's public
/// API is used from one thread at a time. Nothing a client sends can stop the server: a malformed request closes
/// that connection, an internal error is logged and closes that connection.</remarks>
public sealed partial class ServeServer : IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<int, ClientProcess> _clients = [];
    private readonly Dictionary<ulong, Connection> _byInode = [];
    private readonly Dictionary<ulong, ModelFile> _tokens = [];
    private readonly List<Connection> _connections = [];
    private readonly List<Thread> _threads = [];
    private readonly List<string> _violations = [];
    private readonly Socket _listener;
    private readonly Thread _acceptThread;
    private readonly ServeOptions _options;
    private readonly ScenarioRecorder? _recorder;
    private ulong _nextToken = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
    private int _nextConnection;
    private volatile bool _stopping;

    private ServeServer(LabHost host, string socketPath, ServeOptions options)
    {
        Host = host;
        SocketPath = Path.GetFullPath(socketPath);
        _options = options;
        if (options.RecordPath is { } record)
        {
            _recorder = new ScenarioRecorder(record, options.RecordHostText!, options.RecordHostFile ?? "host.yaml");
        }
        RootPath = Path.GetFullPath(options.RootPath ?? SocketPath + ".root");
        host.Checking = InvariantChecking.OnDemand;
        PathTree.Write(RootPath, host);
        if (File.Exists(SocketPath))
        {
            File.Delete(SocketPath);
        }
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(64);
        _acceptThread = new Thread(AcceptLoop) { IsBackground = true, Name = "serve accept" };
        _acceptThread.Start();
    }

    /// <summary>The simulated host the clients drive.</summary>
    public LabHost Host { get; }

    /// <summary>The socket clients connect to.</summary>
    public string SocketPath { get; }

    /// <summary>The path tree (<c>dev/vfio</c>, <c>sys/...</c>) the preload rewrites paths into.</summary>
    public string RootPath { get; }

    /// <summary>Every invariant violation found after a call so far, as the server printed it.</summary>
    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_gate)
            {
                return [.. _violations];
            }
        }
    }

    /// <summary>The lock every call on the model takes; hold it to look at <see cref="Host"/> while clients run.</summary>
    public object Gate => _gate;

    /// <summary>The simulated process mirroring real process <paramref name="pid"/>, if it is a client.</summary>
    public LabProcess? ProcessOf(int pid)
    {
        lock (_gate)
        {
            return _clients.TryGetValue(pid, out ClientProcess? c) ? c.Lab : null;
        }
    }

    /// <summary>Writes the path tree, binds <paramref name="socketPath"/> (replacing a stale socket file there) and
    /// starts accepting clients.</summary>
    /// <exception cref="ArgumentException">The host's page size is not this machine's (the mirror maps the client's
    /// pages one for one), or <see cref="ServeOptions.RecordPath"/> is set without <see cref="ServeOptions.RecordHostText"/>.</exception>
    /// <exception cref="Scenarios.ScenarioParseException">The record's host text is not a well-formed scenario.</exception>
    public static ServeServer Start(LabHost host, string socketPath, ServeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        if (options is { RecordPath: not null, RecordHostText: null })
        {
            throw new ArgumentException("recording needs the host file's text (RecordHostText)", nameof(options));
        }
        if (host.PageSize != (ulong)Environment.SystemPageSize)
        {
            throw new ArgumentException($"the host's page size is {host.PageSize} bytes and this machine's {Environment.SystemPageSize}: "
                + "a client's memory is mirrored page for page, so they must be equal", nameof(host));
        }
        return new ServeServer(host, socketPath, options ?? new ServeOptions());
    }

    /// <summary>Whether the server records the clients' calls (<see cref="ServeOptions.RecordPath"/>).</summary>
    public bool IsRecording => _recorder is not null;

    /// <summary>Writes what the clients did so far as a scenario to <see cref="ServeOptions.RecordPath"/>, whole or
    /// not at all (also after <see cref="Dispose"/>, which records the closes of the files still open).</summary>
    /// <returns>The number of steps recorded.</returns>
    /// <exception cref="InvalidOperationException">The server does not record.</exception>
    /// <exception cref="IOException">The file cannot be written.</exception>
    /// <exception cref="UnauthorizedAccessException">It is not writable.</exception>
    public int SaveRecording()
    {
        ScenarioRecorder recorder = _recorder ?? throw new InvalidOperationException("the server was started without RecordPath: nothing is recorded");
        lock (_gate)
        {
            recorder.Save();
            return recorder.StepCount;
        }
    }

    /// <summary>Stops accepting, closes every connection (clients' calls then fail with EIO), removes the socket.</summary>
    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }
        _stopping = true;
        _listener.Dispose();
        Connection[] open;
        lock (_gate)
        {
            open = [.. _connections];
        }
        foreach (Connection c in open)
        {
            try
            {
                c.Socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        }
        _acceptThread.Join();
        Thread[] threads;
        lock (_gate)
        {
            threads = [.. _threads];
        }
        foreach (Thread t in threads)
        {
            t.Join();
        }
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
        }
    }

    private void AcceptLoop()
    {
        while (!_stopping)
        {
            Socket s;
            try
            {
                s = _listener.Accept();
            }
            catch (SocketException)
            {
                continue;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            var c = new Connection(s, Interlocked.Increment(ref _nextConnection), PeerPid(s));
            var t = new Thread(() => Serve(c)) { IsBackground = true, Name = $"serve connection {c.Id}" };
            lock (_gate)
            {
                _connections.Add(c);
                _threads.Add(t);
            }
            t.Start();
        }
    }

    private static int PeerPid(Socket s)
    {
        // SO_PEERCRED (SOL_SOCKET 1, option 17): struct ucred { pid, uid, gid }.
        Span<byte> cred = stackalloc byte[12];
        try
        {
            return s.GetRawSocketOption(1, 17, cred) >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(cred) : 0;
        }
        catch (SocketException)
        {
            return 0;
        }
    }

    private void Serve(Connection c)
    {
        byte[] header = new byte[Wire.HeaderSize];
        try
        {
            while (!_stopping)
            {
                if (!ReadExactly(c.Socket, header))
                {
                    break;
                }
                var h = RequestHeader.Read(header);
                if (h.Problem() is { } problem)
                {
                    Log($"{c}: protocol error: {problem}; connection closed, nothing changed");
                    Send(c, h.Op, Wire.EProto, 0, []);
                    break;
                }
                byte[] payload = new byte[h.Length];
                if (!ReadExactly(c.Socket, payload))
                {
                    Log($"{c}: connection ended inside a request ({h.Length} payload bytes announced)");
                    break;
                }
                Reply reply;
                lock (_gate)
                {
                    SyncBars();
                    reply = Dispatch(c, h, payload);
                    AfterCall(c, h);
                }
                Trace($"{c.Id} pid {h.Pid} seq {h.Seq} {Wire.OpName(h.Op)} {reply.Describe} -> {FormatResult(reply.Result)}");
                Send(c, h.Op, reply.Result, reply.Flags, reply.Payload);
            }
        }
        catch (SocketException)
        {
            // The client went away mid-reply: the same as EOF.
        }
        catch (ObjectDisposedException)
        {
        }
#pragma warning disable CA1031 // A client must never stop the server: an internal error ends this connection only.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log($"{c}: internal error, connection closed: {e}");
        }
        finally
        {
            lock (_gate)
            {
                Closed(c);
            }
            c.Socket.Dispose();
        }
    }

    private static bool ReadExactly(Socket s, Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = s.Receive(buffer[done..]);
            if (n == 0)
            {
                return false;
            }
            done += n;
        }
        return true;
    }

    private static void Send(Connection c, ushort op, long result, uint flags, byte[] payload)
    {
        byte[] frame = new byte[Wire.HeaderSize + payload.Length];
        Wire.WriteReply(frame, op, (uint)payload.Length, flags, result);
        payload.CopyTo(frame, Wire.HeaderSize);
        c.Socket.Send(frame);
    }

    private static string FormatResult(long r) => r >= 0 ? r.ToString(CultureInfo.InvariantCulture) : ErrnoExtensions.FromReturn(r).ToString();

    // The connection ended (the last reference to the client's file was closed): the model's file is closed in every
    // simulated process holding it, as the kernel releases a file on its last fput.
    private void Closed(Connection c)
    {
        if (c.File is { } exiting)
        {
            // A file closed because its process is exiting: the kernel drops the process's memory (exit_mm) before
            // its files (exit_files), so the process exits in the model first (while this connection is still
            // listed, so its exit report names this file too) and its container's release finds no address space
            // to uncharge, whichever of the pidfd and the socket the server saw first.
            foreach (ClientProcess p in exiting.Holders.ToList())
            {
                if (!p.Exited && ProcFiles.IsExiting(p.Pid))
                {
                    Exited(p);
                }
            }
        }
        _connections.Remove(c);
        if (c.Inode != 0 && _byInode.TryGetValue(c.Inode, out Connection? same) && same == c)
        {
            _byInode.Remove(c.Inode);
        }
        if (c.File is { } f)
        {
            foreach (ClientProcess p in f.Holders)
            {
                if (p.Lab.IsAlive)
                {
                    int closed = p.Lab.Syscalls.Close(f.Fd);
                    _recorder?.Closed(p, f, closed);
                }
            }
            f.Holders.Clear();
            c.File = null;
            CheckInvariants($"{c.Id} close");
        }
    }

    private void AfterCall(Connection c, RequestHeader h)
    {
        SyncBars();
        ForwardInterrupts();
        CheckInvariants($"{c.Id} pid {h.Pid} seq {h.Seq} {Wire.OpName(h.Op)}");
    }

    private void CheckInvariants(string after)
    {
        IReadOnlyList<LabViolation> found = Host.CheckChangedInvariants();
        foreach (LabViolation v in found)
        {
            string line = $"invariant violated after {after}: {v}";
            _violations.Add(line);
            Log(line);
        }
    }

    private void Log(string line)
    {
        if (_options.Log is { } w)
        {
            lock (w)
            {
                w.WriteLine(line);
                w.Flush();
            }
        }
    }

    private void Trace(string line)
    {
        if (_options.Trace is { } w)
        {
            lock (w)
            {
                w.WriteLine(line);
                w.Flush();
            }
        }
    }

    private readonly record struct Reply(long Result, uint Flags, byte[] Payload, string Describe)
    {
        public static Reply Of(long result, string describe) => new(result, 0, [], describe);
    }

    private static string CString(ReadOnlySpan<byte> bytes)
    {
        int nul = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? bytes : bytes[..nul]);
    }
}
