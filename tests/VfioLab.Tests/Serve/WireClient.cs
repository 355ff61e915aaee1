using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using VfioLab.Serve;

namespace VfioLab.Tests.Serve;

/// <summary>The test process as a serve client: one connection speaking the wire protocol as the preload does, with
/// this process's pid, and native memory the server reads and writes with process_vm_readv/writev.</summary>
internal sealed class WireClient : IDisposable
{
    private ulong _seq;

    public WireClient(string socketPath)
    {
        Socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        Socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        Fd = (int)Socket.SafeHandle.DangerousGetHandle();
        string target = new FileInfo($"/proc/self/fd/{Fd}").LinkTarget!;
        Inode = ulong.Parse(target.AsSpan(8, target.Length - 9), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Connects once the server listens: its socket file appears at bind(2), before listen(2), and a connect
    /// in between is refused (a serve test failed so under load, 60 ms after the start).</summary>
    public static WireClient WhenListening(string socketPath, TimeSpan timeout)
    {
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new WireClient(socketPath);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable
                or SocketError.AddressFamilyNotSupported || e.ErrorCode == 2)
            {
                if (deadline.Elapsed > timeout)
                {
                    throw;
                }
                Thread.Sleep(10);
            }
        }
    }

    public Socket Socket { get; }

    /// <summary>This process's fd number of the connection (what a client passes inside an ioctl argument).</summary>
    public int Fd { get; }

    public ulong Inode { get; }

    public int Pid { get; set; } = Environment.ProcessId;

    public readonly record struct Answer(long Result, uint Flags, byte[] Payload, ushort Op);

    public Answer Call(ushort op, ReadOnlySpan<byte> payload)
    {
        byte[] frame = new byte[Wire.HeaderSize + payload.Length];
        Wire.WriteRequest(frame, op, (uint)payload.Length, Pid, ++_seq);
        payload.CopyTo(frame.AsSpan(Wire.HeaderSize));
        Socket.Send(frame);
        return Receive();
    }

    public Answer Receive()
    {
        byte[] header = new byte[Wire.HeaderSize];
        ReadExactly(header);
        Assert.Equal(Wire.ReplyMagic, BinaryPrimitives.ReadUInt32LittleEndian(header));
        Assert.Equal(Wire.Version, BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(4)));
        ushort op = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(6));
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(12));
        long result = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(16));
        byte[] payload = new byte[length];
        ReadExactly(payload);
        return new Answer(result, flags, payload, op);
    }

    /// <summary>Whether the server closed the connection (a read returns EOF within the timeout).</summary>
    public bool ClosedByServer(TimeSpan timeout)
    {
        Socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
        try
        {
            return Socket.Receive(new byte[1]) == 0;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // Closed with bytes of ours unread: the kernel resets the connection.
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private void ReadExactly(Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = Socket.Receive(buffer[done..]);
            if (n == 0)
            {
                throw new EndOfStreamException("the server closed the connection");
            }
            done += n;
        }
    }

    public Answer Hello()
    {
        Span<byte> p = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(p, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(p[8..], Inode);
        return Call(Wire.Hello, p);
    }

    public Answer Open(string path)
    {
        byte[] p = new byte[16 + Encoding.UTF8.GetByteCount(path) + 1];
        BinaryPrimitives.WriteUInt32LittleEndian(p, 2);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(8), Inode);
        Encoding.UTF8.GetBytes(path, p.AsSpan(16));
        return Call(Wire.Open, p);
    }

    public Answer Attach(ulong token)
    {
        Span<byte> p = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(p, token);
        BinaryPrimitives.WriteUInt64LittleEndian(p[8..], Inode);
        return Call(Wire.Attach, p);
    }

    public Answer Ioctl(uint request, ulong arg)
    {
        Span<byte> p = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(p, request);
        BinaryPrimitives.WriteUInt64LittleEndian(p[8..], arg);
        return Call(Wire.Ioctl, p);
    }

    public Answer Ioctl(uint request, NativeBuffer arg) => Ioctl(request, arg.Address);

    public Answer ReadWrite(ushort op, ulong buf, ulong count, ulong offset)
    {
        Span<byte> p = stackalloc byte[24];
        BinaryPrimitives.WriteUInt64LittleEndian(p, buf);
        BinaryPrimitives.WriteUInt64LittleEndian(p[8..], count);
        BinaryPrimitives.WriteUInt64LittleEndian(p[16..], offset);
        return Call(op, p);
    }

    public void Dispose() => Socket.Dispose();
}

/// <summary>Page-aligned native memory of the test process, the "client memory" the server reaches.</summary>
internal sealed class NativeBuffer : IDisposable
{
    private IntPtr _block;

    public NativeBuffer(ulong size, ulong align = 4096)
    {
        Size = size;
        _block = Marshal.AllocHGlobal((nint)(size + align));
        Address = ((ulong)_block + align - 1) & ~(align - 1);
        Write(0, new byte[size]);
    }

    public ulong Address { get; }

    public ulong Size { get; }

    public void Write(ulong offset, ReadOnlySpan<byte> data) => Marshal.Copy(data.ToArray(), 0, (IntPtr)(Address + offset), data.Length);

    public byte[] Read(ulong offset, int count)
    {
        byte[] b = new byte[count];
        Marshal.Copy((IntPtr)(Address + offset), b, 0, count);
        return b;
    }

    public uint U32(ulong offset) => BinaryPrimitives.ReadUInt32LittleEndian(Read(offset, 4));

    public ulong U64(ulong offset) => BinaryPrimitives.ReadUInt64LittleEndian(Read(offset, 8));

    public void Dispose()
    {
        if (_block != IntPtr.Zero)
        {
            Marshal.FreeHGlobal(_block);
            _block = IntPtr.Zero;
        }
    }
}
