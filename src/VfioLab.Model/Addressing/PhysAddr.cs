namespace VfioLab.Addressing;

/// <summary>A host physical address (phys_addr_t).</summary>
internal readonly record struct PhysAddr(ulong Value) : IComparable<PhysAddr>
{
    /// <summary>This address plus <paramref name="bytes"/>; false when the sum passes 2^64-1.</summary>
    public bool TryAdd(ulong bytes, out PhysAddr result)
    {
        ulong sum = Value + bytes;
        result = new PhysAddr(sum);
        return sum >= Value;
    }

    /// <summary>This address plus <paramref name="bytes"/>; the caller has proved it cannot overflow.</summary>
    public PhysAddr Plus(ulong bytes)
    {
        System.Diagnostics.Debug.Assert(Value + bytes >= Value, "address overflow");
        return new PhysAddr(Value + bytes);
    }

    /// <summary>Bytes from <paramref name="origin"/> up to this address.</summary>
    public ulong Minus(PhysAddr origin) => Value - origin.Value;

    /// <summary>Whether the address is a multiple of <paramref name="alignment"/> (a power of two).</summary>
    public bool IsAligned(ulong alignment) => (Value & (alignment - 1)) == 0;

    /// <inheritdoc />
    public int CompareTo(PhysAddr other) => Value.CompareTo(other.Value);

    /// <inheritdoc />
    public override string ToString() => $"0x{Value:x}";
}
