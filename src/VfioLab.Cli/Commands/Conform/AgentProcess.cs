using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using VfioLab.Abi;

namespace VfioLab.Cli.Commands.Conform;

/// <summary>
/// One scenario process on the real kernel that is not this runner: a <c>rig-agent</c> (conformance/agent/rig-agent.c,
/// a single-threaded static C program) making each system call on request over a Unix socket, so that it can
/// <see cref="Fork()"/> for real (a .NET process cannot) and <see cref="Exit"/> for real. The frames are the agent's
/// (see its source): a request is op, data length and six integer arguments, then the data; a reply is the result
/// (a value or -errno) and the data's length, then the data.
/// </summary>
internal sealed class AgentProcess : ISyscallSurface
{
    private const int RequestHeader = 56;
    private const int ReplyHeader = 16;

    // /proc/PID/stat's state once the process's exit has released its mm and files, or the pid is gone.
    private static readonly TimeSpan ExitWait = TimeSpan.FromSeconds(60);

    private readonly AgentHost _host;
    private readonly Socket _socket;
    private bool _exited;

    private AgentProcess(AgentHost host, Socket socket, int pid)
    {
        _host = host;
        _socket = socket;
        Pid = pid;
    }

    private enum Op : uint
    {
        Open = 1,
        Close = 2,
        IoctlPointer = 3,
        IoctlValue = 4,
        Pread = 5,
        Pwrite = 6,
        Mmap = 7,
        Munmap = 8,
        ReadMemory = 9,
        WriteMemory = 10,
        Fork = 11,
        Exit = 12,
        LockedVm = 13,
        Memlock = 14,
        CapIpcLock = 15,
        EventFd = 16,
        EventFdRead = 17,
        PollIn = 18,
    }

    /// <inheritdoc/>
    public int Pid { get; }

    /// <summary>The agents this one belongs with.</summary>
    public AgentHost Host => _host;

    /// <summary>Whether the process exited (<see cref="Exit"/>); every later call answers -ESRCH.</summary>
    public bool Exited => _exited;

    /// <summary>The agent that connected to <paramref name="listener"/> (its first frame is its pid).</summary>
    internal static AgentProcess Accept(AgentHost host, Socket listener)
    {
        Socket s = listener.Accept();
        (long pid, _) = ReadReply(s);
        return new AgentProcess(host, s, (int)pid);
    }

    /// <inheritdoc/>
    public int Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return (int)Call(Op.Open, System.Text.Encoding.UTF8.GetBytes(path)).Result;
    }

    /// <inheritdoc/>
    public int Close(int fd) => (int)Call(Op.Close, [], fd).Result;

    /// <inheritdoc/>
    public long Ioctl(int fd, uint request, Span<byte> arg)
    {
        (long result, byte[] data) = Call(Op.IoctlPointer, arg.ToArray(), fd, request);
        data.AsSpan(0, Math.Min(data.Length, arg.Length)).CopyTo(arg);
        return result;
    }

    /// <inheritdoc/>
    public long Ioctl(int fd, uint request, ulong value) => Call(Op.IoctlValue, [], fd, request, (long)value).Result;

    /// <inheritdoc/>
    public long Pread(int fd, Span<byte> destination, ulong offset)
    {
        (long result, byte[] data) = Call(Op.Pread, [], fd, (long)offset, destination.Length);
        data.CopyTo(destination);
        return result;
    }

    /// <inheritdoc/>
    public long Pwrite(int fd, ReadOnlySpan<byte> source, ulong offset) => Call(Op.Pwrite, source.ToArray(), fd, (long)offset).Result;

    /// <inheritdoc/>
    public long Mmap(ulong address, ulong length, MemoryProtection protection, MmapFlags flags, int fd, ulong offset) =>
        Call(Op.Mmap, [], (long)address, (long)length, (long)protection, (long)flags, fd, (long)offset).Result;

    /// <inheritdoc/>
    public int Munmap(ulong address, ulong length) => (int)Call(Op.Munmap, [], (long)address, (long)length).Result;

    /// <inheritdoc/>
    public int ReadMemory(ulong address, Span<byte> destination)
    {
        (long result, byte[] data) = Call(Op.ReadMemory, [], (long)address, destination.Length);
        if (result == 0)
        {
            data.CopyTo(destination);
        }
        return (int)result;
    }

    /// <inheritdoc/>
    public int WriteMemory(ulong address, ReadOnlySpan<byte> source) => (int)Call(Op.WriteMemory, source.ToArray(), (long)address).Result;

    /// <summary>fork(2) of the agent: the child is a second agent, connected on its own.</summary>
    /// <exception cref="IOException">fork failed (its errno), or the agent is gone.</exception>
    public ISyscallSurface Fork()
    {
        long pid = Fork(out AgentProcess? child);
        return child ?? throw new IOException($"fork in agent {Pid}: {ErrnoExtensions.FromReturn(pid)}");
    }

    /// <summary>fork(2) of the agent: the child's pid and the child (a second agent, connected on its own), or -errno
    /// and null.</summary>
    /// <exception cref="IOException">The child that connected is not the one forked, or the agent is gone.</exception>
    public long Fork(out AgentProcess? child)
    {
        child = null;
        long pid = Call(Op.Fork, []).Result;
        if (pid < 0)
        {
            return pid;
        }
        child = _host.AcceptChild();
        if (child.Pid != pid)
        {
            throw new IOException($"agent {Pid} forked pid {pid}, but pid {child.Pid} connected");
        }
        return pid;
    }

    /// <summary>exit(2) for real: the agent exits, and this returns once the kernel released its mm and its files (it
    /// is a zombie or gone).</summary>
    public void Exit()
    {
        if (_exited)
        {
            return;
        }
        Send(Op.Exit, [], []);
        _exited = true;
        _socket.Dispose();
        var clock = Stopwatch.StartNew();
        while (!ReleasedItsResources(Pid))
        {
            if (clock.Elapsed > ExitWait)
            {
                throw new TimeoutException($"agent {Pid} did not exit within {ExitWait.TotalSeconds} s");
            }
            Thread.Sleep(5);
        }
        _host.Reap(Pid);
    }

    /// <summary>VmLck of the agent's /proc/self/status, in bytes.</summary>
    public long LockedVmBytes() => Call(Op.LockedVm, []).Result;

    /// <summary>setrlimit(RLIMIT_MEMLOCK) in the agent: 0 or -errno.</summary>
    public long SetMemlockLimit(ulong bytes) => Call(Op.Memlock, [], (long)bytes).Result;

    /// <summary>CAP_IPC_LOCK raised in or dropped from the agent's effective set: 0 or -errno.</summary>
    public long SetCapIpcLock(bool effective) => Call(Op.CapIpcLock, [], effective ? 1 : 0).Result;

    /// <summary>A non-blocking eventfd of the agent: the fd or -errno.</summary>
    public long CreateEventFd() => Call(Op.EventFd, []).Result;

    /// <summary>A read of the agent's eventfd <paramref name="fd"/>: the count or -errno.</summary>
    public long ReadEventFd(int fd) => Call(Op.EventFdRead, [], fd).Result;

    /// <summary>Whether the agent's fd <paramref name="fd"/> becomes readable within <paramref name="timeout"/>.</summary>
    public bool WaitReadable(int fd, TimeSpan timeout) => Call(Op.PollIn, [], fd, (long)timeout.TotalMilliseconds).Result > 0;

    /// <summary>Ends the agent without a word if it still runs (the runner is giving up on the scenario).</summary>
    internal void Abandon()
    {
        if (!_exited)
        {
            _exited = true;
            _socket.Dispose();
        }
    }

    // A zombie ('Z') or a vanished pid has been through exit's release of its mm and files.
    private static bool ReleasedItsResources(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (IOException)
        {
            return true;
        }
        int close = stat.LastIndexOf(')');
        return close < 0 || close + 2 >= stat.Length || stat[close + 2] is 'Z' or 'X';
    }

    private (long Result, byte[] Data) Call(Op op, byte[] data, params long[] args)
    {
        if (_exited)
        {
            return (Errno.ESRCH.AsReturn(), []);
        }
        Send(op, data, args);
        return ReadReply(_socket);
    }

    private void Send(Op op, byte[] data, long[] args)
    {
        byte[] frame = new byte[RequestHeader + data.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)op);
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(4), (uint)data.Length);
        for (int i = 0; i < args.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(frame.AsSpan(8 + (8 * i)), args[i]);
        }
        data.CopyTo(frame, RequestHeader);
        try
        {
            _socket.Send(frame);
        }
        catch (SocketException e)
        {
            throw new IOException($"agent {Pid} is gone: {e.Message}", e);
        }
    }

    private static (long Result, byte[] Data) ReadReply(Socket s)
    {
        byte[] header = new byte[ReplyHeader];
        ReadExactly(s, header);
        long result = BinaryPrimitives.ReadInt64LittleEndian(header);
        byte[] data = new byte[BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8))];
        ReadExactly(s, data);
        return (result, data);
    }

    private static void ReadExactly(Socket s, byte[] buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n;
            try
            {
                n = s.Receive(buffer, done, buffer.Length - done, SocketFlags.None);
            }
            catch (SocketException e)
            {
                throw new IOException($"the agent's connection broke: {e.Message}", e);
            }
            if (n == 0)
            {
                throw new IOException("the agent closed its connection");
            }
            done += n;
        }
    }
}
