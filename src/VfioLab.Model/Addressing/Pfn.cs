namespace VfioLab.Addressing;

/// <summary>A host page frame number: physical address divided by the host PAGE_SIZE (unsigned long pfn).</summary>
internal readonly record struct Pfn(ulong Value) : IComparable<Pfn>
{
    /// <summary>The frame <paramref name="frames"/> later.</summary>
    public Pfn Plus(ulong frames) => new(Value + frames);

    /// <summary>The physical address of the frame's first byte.</summary>
    public PhysAddr ToPhys(int pageShift) => new(Value << pageShift);

    /// <summary>The frame containing <paramref name="address"/>.</summary>
    public static Pfn FromPhys(PhysAddr address, int pageShift) => new(address.Value >> pageShift);

    /// <inheritdoc />
    public int CompareTo(Pfn other) => Value.CompareTo(other.Value);

    /// <inheritdoc />
    public override string ToString() => $"pfn 0x{Value:x}";
}
