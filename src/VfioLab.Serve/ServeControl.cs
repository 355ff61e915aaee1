using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace VfioLab.Serve;

/// <summary>The operator's side of the serve protocol (<c>vfiolab ctl</c>): one request on a new connection to a
/// running server, its reply, and the connection closed. The ops are docs/serve-protocol.md's 64 and up.</summary>
public static class ServeControl
{
    /// <summary>CTL_STATUS: the processes, containers, mappings and devices, as text.</summary>
    public const ushort Status = Wire.CtlStatus;

    /// <summary>CTL_CHECK: every invariant checked now; the result is the number of violations.</summary>
    public const ushort Check = Wire.CtlCheck;

    /// <summary>CTL_SIZING: locked_vm, DMA mappings, IOPTEs and page-table pages, as text.</summary>
    public const ushort Sizing = Wire.CtlSizing;

    /// <summary>CTL_DMA: a device DMA (<see cref="DmaPayload"/>); the reply is <c>u32 length</c>, the bytes read, then
    /// text.</summary>
    public const ushort Dma = Wire.CtlDma;

    /// <summary>CTL_RESET: VFIO_DEVICE_RESET of the named device as the first client holding it issues it.</summary>
    public const ushort Reset = Wire.CtlReset;

    /// <summary>CTL_UNPLUG: the named device is hot-unplugged.</summary>
    public const ushort Unplug = Wire.CtlUnplug;

    /// <summary>CTL_RELEASE: the host takes the named device away from its users.</summary>
    public const ushort Release = Wire.CtlRelease;

    /// <summary>CTL_RECORD_SAVE: a server started with <c>--record FILE</c> writes what its clients did so far.</summary>
    public const ushort RecordSave = Wire.CtlRecordSave;

    /// <summary>Sends one control request to the server on <paramref name="socketPath"/>.</summary>
    /// <returns>The reply's result (non-negative, or -errno) and payload.</returns>
    /// <exception cref="SocketException">No server answers on the socket.</exception>
    /// <exception cref="EndOfStreamException">The server closed the connection before replying.</exception>
    public static KeyValuePair<long, byte[]> Call(string socketPath, ushort op, ReadOnlySpan<byte> payload)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(socketPath));
        byte[] frame = new byte[Wire.HeaderSize + payload.Length];
        Wire.WriteRequest(frame, op, (uint)payload.Length, Environment.ProcessId, 1);
        payload.CopyTo(frame.AsSpan(Wire.HeaderSize));
        s.Send(frame);
        byte[] header = new byte[Wire.HeaderSize];
        Receive(s, header);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
        byte[] body = new byte[length];
        Receive(s, body);
        return new KeyValuePair<long, byte[]>(BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(16)), body);
    }

    /// <summary>The payload of a device name (RESET, UNPLUG, RELEASE): NUL-terminated UTF-8.</summary>
    public static byte[] NamePayload(string device) => Encoding.UTF8.GetBytes(device + "\0");

    /// <summary>The payload of CTL_DMA: <c>u32 write, u32 name_length, u64 iova, u64 size, name, data</c>.</summary>
    public static byte[] DmaPayload(string device, bool write, ulong iova, ulong size, ReadOnlySpan<byte> data)
    {
        byte[] name = Encoding.UTF8.GetBytes(device);
        byte[] p = new byte[24 + name.Length + (write ? data.Length : 0)];
        BinaryPrimitives.WriteUInt32LittleEndian(p, write ? 1u : 0u);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(4), (uint)name.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(8), iova);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(16), write ? (ulong)data.Length : size);
        name.CopyTo(p, 24);
        if (write)
        {
            data.CopyTo(p.AsSpan(24 + name.Length));
        }
        return p;
    }

    private static void Receive(Socket s, Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = s.Receive(buffer[done..]);
            if (n == 0)
            {
                throw new EndOfStreamException("the server closed the connection before replying");
            }
            done += n;
        }
    }
}
