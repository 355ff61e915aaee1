using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>The VMA covering a run of virtual pages, as stored in an address space's VMA map (the
/// maple tree's entries); constant, compared by reference.</summary>
internal readonly struct VmaSlot(Vma vma) : IRunValue<VmaSlot>
{
    /// <summary>The VMA.</summary>
    public Vma Vma { get; } = vma;

    /// <inheritdoc />
    public VmaSlot Advance(ulong offset) => this;

    /// <inheritdoc />
    public bool Equals(VmaSlot other) => ReferenceEquals(Vma, other.Vma);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is VmaSlot other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Vma);
}
