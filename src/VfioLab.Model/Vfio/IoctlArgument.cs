using System.Buffers.Binary;
using VfioLab.Diagnostics;

namespace VfioLab.Vfio;

/// <summary>
/// The <c>unsigned long arg</c> of an ioctl as a kernel handler sees it: either an integer passed by
/// value, or a user pointer whose bytes are copied in and out. Callers of the syscall surface pass a
/// buffer (the bytes the pointer refers to; reads or writes past its end fault) or a plain integer,
/// which struct-taking handlers treat as a pointer into the process's memory, as Linux does.
/// </summary>
internal ref struct IoctlArgument
{
    /// <summary>The nominal user address of a caller-supplied buffer, used where a handler reads
    /// the argument as an integer although the caller passed a buffer.</summary>
    public const ulong BufferAddress = 0x7ffd_0000_0000;

    private readonly Span<byte> _buffer;
    private readonly bool _hasBuffer;
    // The caller, whose memory a pointer argument refers to: its ProcessUserMemory is made only when a handler reads
    // through the pointer, not per ioctl (issue 16: one allocation per MAP and UNMAP that used a buffer anyway).
    private readonly Host.Process? _process;

    private IoctlArgument(ulong value, Span<byte> buffer, bool hasBuffer, Host.Process? process)
    {
        Value = value;
        _buffer = buffer;
        _hasBuffer = hasBuffer;
        _process = process;
    }

    /// <summary>The raw argument: the integer, or the pointer value.</summary>
    public ulong Value { get; }

    /// <summary>An argument that points at <paramref name="buffer"/>.</summary>
    public static IoctlArgument FromBuffer(Span<byte> buffer, Host.Process? process) => new(BufferAddress, buffer, true, process);

    /// <summary>An integer argument; as a pointer it refers to <paramref name="process"/>'s memory.</summary>
    public static IoctlArgument FromValue(ulong value, Host.Process? process) => new(value, default, false, process);

    /// <summary>copy_from_user of <paramref name="destination"/>.Length bytes at <paramref name="offset"/>.</summary>
    public readonly bool TryCopyFrom(int offset, Span<byte> destination)
    {
        if (_hasBuffer)
        {
            if (offset < 0 || (long)offset + destination.Length > _buffer.Length)
            {
                return false;
            }
            _buffer.Slice(offset, destination.Length).CopyTo(destination);
            return true;
        }
        return _process is not null && Value + (ulong)offset >= Value && new ProcessUserMemory(_process).TryRead(Value + (ulong)offset, destination);
    }

    /// <summary>copy_to_user of <paramref name="source"/> at <paramref name="offset"/>.</summary>
    public readonly bool TryCopyTo(int offset, ReadOnlySpan<byte> source)
    {
        if (_hasBuffer)
        {
            if (offset < 0 || (long)offset + source.Length > _buffer.Length)
            {
                return false;
            }
            source.CopyTo(_buffer.Slice(offset));
            return true;
        }
        return _process is not null && new ProcessUserMemory(_process).TryWrite(Value + (ulong)offset, source);
    }

    /// <summary>copy_to_user of <paramref name="source"/> at <paramref name="offset"/> with its 8 bytes at
    /// <paramref name="fieldOffset"/> replaced by <paramref name="field"/> (little-endian): a struct copied in goes back
    /// with one field changed, with exactly the bytes and failures of <see cref="TryCopyTo"/> of the changed struct.</summary>
    /// <remarks>The field is stored where the copy lands rather than into <paramref name="source"/> before it: a copy
    /// reading the struct with 16-byte loads right after an 8-byte store into it waits for that store to reach the
    /// cache (a failed store-to-load forward; UNMAP_DMA's size, issue 16).</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public readonly bool TryCopyToWith(int offset, ReadOnlySpan<byte> source, int fieldOffset, ulong field)
    {
        System.Diagnostics.Debug.Assert(fieldOffset >= 0 && fieldOffset <= source.Length - sizeof(ulong) && source.Length <= MaxPatchedCopy,
            "the field lies inside a small struct");
        if (_hasBuffer)
        {
            if (offset < 0 || (long)offset + source.Length > _buffer.Length)
            {
                return false;
            }
            Span<byte> to = _buffer.Slice(offset, source.Length);
            source.CopyTo(to);
            BinaryPrimitives.WriteUInt64LittleEndian(to[fieldOffset..], field);
            return true;
        }
        return TryCopyToPointerWith(offset, source, fieldOffset, field);
    }

    // TryCopyToWith through the pointer: the changed struct built on the stack, then one copy_to_user of it.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private readonly bool TryCopyToPointerWith(int offset, ReadOnlySpan<byte> source, int fieldOffset, ulong field)
    {
        Span<byte> bytes = stackalloc byte[MaxPatchedCopy];
        bytes = bytes[..source.Length];
        source.CopyTo(bytes);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes[fieldOffset..], field);
        return TryCopyTo(offset, bytes);
    }

    // The largest struct TryCopyToWith copies back (its stack copy for a pointer argument).
    private const int MaxPatchedCopy = 64;

    /// <summary>get_user of a 32-bit int at the pointer.</summary>
    public readonly bool TryGetInt32(out int value)
    {
        Span<byte> b = stackalloc byte[4];
        bool ok = TryCopyFrom(0, b);
        value = ok ? BinaryPrimitives.ReadInt32LittleEndian(b) : 0;
        return ok;
    }

    /// <summary>strndup_user: the NUL-terminated string at the pointer, at most <paramref name="max"/>
    /// bytes including the NUL. EFAULT when no NUL is reachable, EINVAL when it is too long.</summary>
    public readonly Abi.Errno TryGetString(int max, out string value)
    {
        value = string.Empty;
        Span<byte> one = stackalloc byte[1];
        var bytes = new List<byte>();
        for (int i = 0; i < max; i++)
        {
            if (!TryCopyFrom(i, one))
            {
                return Refusals.Refuse(Abi.Errno.EFAULT, "strndup_user", "the string faulted at byte {0} before its NUL", (ulong)i);
            }
            if (one[0] == 0)
            {
                value = System.Text.Encoding.UTF8.GetString(bytes.ToArray());
                return Abi.Errno.None;
            }
            bytes.Add(one[0]);
        }
        return Refusals.Refuse(Abi.Errno.EINVAL, "strndup_user", "no NUL within the first {0} bytes", (ulong)max);
    }
}
