namespace VfioLab.Abi;

/// <summary>Fixed region indexes of a vfio-pci device (<c>VFIO_PCI_*_REGION_INDEX</c>); see <see cref="VfioPci"/>.</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
public enum VfioPciRegionIndex : uint
{
    /// <summary>BAR0.</summary>
    Bar0 = 0,
    /// <summary>BAR1.</summary>
    Bar1 = 1,
    /// <summary>BAR2.</summary>
    Bar2 = 2,
    /// <summary>BAR3.</summary>
    Bar3 = 3,
    /// <summary>BAR4.</summary>
    Bar4 = 4,
    /// <summary>BAR5.</summary>
    Bar5 = 5,
    /// <summary>ROM: the expansion ROM.</summary>
    Rom = 6,
    /// <summary>CONFIG: PCI config space.</summary>
    Config = 7,
    /// <summary>VGA: legacy VGA I/O and MMIO ranges at their identity offsets.</summary>
    Vga = 8,
}
