namespace VfioLab.Addressing;

/// <summary>A virtual address in a simulated process's address space (a user pointer, unsigned long vaddr).</summary>
internal readonly record struct HostVirtAddr(ulong Value) : IComparable<HostVirtAddr>
{
    /// <summary>This address plus <paramref name="bytes"/>; false when the sum passes 2^64-1.</summary>
    public bool TryAdd(ulong bytes, out HostVirtAddr result)
    {
        ulong sum = Value + bytes;
        result = new HostVirtAddr(sum);
        return sum >= Value;
    }

    /// <summary>This address plus <paramref name="bytes"/>; the caller has proved it cannot overflow.</summary>
    public HostVirtAddr Plus(ulong bytes)
    {
        System.Diagnostics.Debug.Assert(Value + bytes >= Value, "address overflow");
        return new HostVirtAddr(Value + bytes);
    }

    /// <summary>Bytes from <paramref name="origin"/> up to this address.</summary>
    public ulong Minus(HostVirtAddr origin) => Value - origin.Value;

    /// <summary>Whether the address is a multiple of <paramref name="alignment"/> (a power of two).</summary>
    public bool IsAligned(ulong alignment) => (Value & (alignment - 1)) == 0;

    /// <inheritdoc />
    public int CompareTo(HostVirtAddr other) => Value.CompareTo(other.Value);

    /// <inheritdoc />
    public override string ToString() => $"0x{Value:x}";
}
