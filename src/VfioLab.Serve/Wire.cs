using System.Buffers.Binary;

namespace VfioLab.Serve;

/// <summary>The serve protocol's constants and headers (docs/serve-protocol.md), the C# mirror of
/// <c>native/preload/vfiolab-wire.h</c>; a test holds the two equal.</summary>
internal static class Wire
{
    public const ushort Version = 1;
    public const uint RequestMagic = 0x514c4656;
    public const uint ReplyMagic = 0x524c4656;
    public const uint MaxPayload = 65536;
    public const int HeaderSize = 24;
    public const uint ReplyNewFile = 1;

    /// <summary>-EPROTO (71 on every Linux architecture VfioLab models), the answer to a malformed request.</summary>
    public const long EProto = -71;

    public const ushort Hello = 1;
    public const ushort Open = 2;
    public const ushort Attach = 3;
    public const ushort Ioctl = 16;
    public const ushort Pread = 17;
    public const ushort Pwrite = 18;
    public const ushort MmapPrepare = 19;
    public const ushort MmapCommit = 20;
    public const ushort Munmap = 21;

    public const ushort CtlStatus = 64;
    public const ushort CtlCheck = 65;
    public const ushort CtlSizing = 66;
    public const ushort CtlDma = 67;
    public const ushort CtlReset = 68;
    public const ushort CtlUnplug = 69;
    public const ushort CtlRelease = 70;
    public const ushort CtlRecordSave = 71;

    public static bool IsCtlOp(ushort op) => op is >= CtlStatus and <= CtlRecordSave;

    public static bool IsKnownOp(ushort op) =>
        op is Hello or Open or Attach or Ioctl or Pread or Pwrite or MmapPrepare or MmapCommit or Munmap || IsCtlOp(op);

    public static string OpName(ushort op) => op switch
    {
        Hello => "HELLO",
        Open => "OPEN",
        Attach => "ATTACH",
        Ioctl => "IOCTL",
        Pread => "PREAD",
        Pwrite => "PWRITE",
        MmapPrepare => "MMAP_PREPARE",
        MmapCommit => "MMAP_COMMIT",
        Munmap => "MUNMAP",
        CtlStatus => "CTL_STATUS",
        CtlCheck => "CTL_CHECK",
        CtlSizing => "CTL_SIZING",
        CtlDma => "CTL_DMA",
        CtlReset => "CTL_RESET",
        CtlUnplug => "CTL_UNPLUG",
        CtlRelease => "CTL_RELEASE",
        CtlRecordSave => "CTL_RECORD_SAVE",
        _ => $"op {op}",
    };

    public static void WriteRequest(Span<byte> header, ushort op, uint length, int pid, ulong seq)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(header, RequestMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], Version);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], op);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], length);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], pid);
        BinaryPrimitives.WriteUInt64LittleEndian(header[16..], seq);
    }

    public static void WriteReply(Span<byte> header, ushort op, uint length, uint flags, long result)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(header, ReplyMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], Version);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], op);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], flags);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], result);
    }
}

/// <summary>A request header as it came off the socket.</summary>
internal readonly record struct RequestHeader(uint Magic, ushort Version, ushort Op, uint Length, int Pid, ulong Seq)
{
    public static RequestHeader Read(ReadOnlySpan<byte> h) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(h),
        BinaryPrimitives.ReadUInt16LittleEndian(h[4..]),
        BinaryPrimitives.ReadUInt16LittleEndian(h[6..]),
        BinaryPrimitives.ReadUInt32LittleEndian(h[8..]),
        BinaryPrimitives.ReadInt32LittleEndian(h[12..]),
        BinaryPrimitives.ReadUInt64LittleEndian(h[16..]));

    /// <summary>Why this header is a protocol error, or null when it is well formed.</summary>
    public string? Problem() =>
        Magic != Wire.RequestMagic ? $"bad magic 0x{Magic:x8}"
        : Version != Wire.Version ? $"version {Version}, not {Wire.Version}"
        : !Wire.IsKnownOp(Op) ? $"unknown op {Op}"
        : Length > Wire.MaxPayload ? $"payload of {Length} bytes is over {Wire.MaxPayload}"
        : null;
}
