namespace VfioLab.Addressing;

/// <summary>An I/O virtual address: what a device puts on the bus, translated by its IOMMU domain (dma_addr_t).</summary>
internal readonly record struct Iova(ulong Value) : IComparable<Iova>
{
    /// <summary>This address plus <paramref name="bytes"/>; false when the sum passes 2^64-1.</summary>
    public bool TryAdd(ulong bytes, out Iova result)
    {
        ulong sum = Value + bytes;
        result = new Iova(sum);
        return sum >= Value;
    }

    /// <summary>This address plus <paramref name="bytes"/>; the caller has proved it cannot overflow.</summary>
    public Iova Plus(ulong bytes)
    {
        System.Diagnostics.Debug.Assert(Value + bytes >= Value, "address overflow");
        return new Iova(Value + bytes);
    }

    /// <summary>This address plus <paramref name="bytes"/> modulo 2^64, as the kernel's unsigned arithmetic wraps where it
    /// checks nothing (type1's external pins and dma_rw before v6.18): the wrap is the behaviour modelled.</summary>
    public Iova PlusWrapping(ulong bytes) => new(unchecked(Value + bytes));

    /// <summary>Bytes from <paramref name="origin"/> up to this address.</summary>
    public ulong Minus(Iova origin) => Value - origin.Value;

    /// <summary>Whether the address is a multiple of <paramref name="alignment"/> (a power of two).</summary>
    public bool IsAligned(ulong alignment) => (Value & (alignment - 1)) == 0;

    /// <inheritdoc />
    public int CompareTo(Iova other) => Value.CompareTo(other.Value);

    /// <inheritdoc />
    public override string ToString() => $"0x{Value:x}";
}
