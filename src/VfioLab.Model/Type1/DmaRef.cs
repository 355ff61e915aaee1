using VfioLab.Collections;

namespace VfioLab.Type1;

/// <summary>A mapping as the value of the DMA tree's run map (the rb-tree of struct vfio_dma keyed by
/// IOVA): every key of the mapping's range holds the same mapping, and two mappings never merge.</summary>
internal readonly struct DmaRef(VfioDma dma) : IRunValue<DmaRef>
{
    /// <summary>The mapping.</summary>
    public VfioDma Dma { get; } = dma;

    /// <inheritdoc />
    public DmaRef Advance(ulong offset) => this;

    /// <inheritdoc />
    public bool Equals(DmaRef other) => ReferenceEquals(Dma, other.Dma);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is DmaRef other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Dma);
}
