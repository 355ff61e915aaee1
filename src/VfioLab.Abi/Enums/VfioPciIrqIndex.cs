namespace VfioLab.Abi;

/// <summary>Fixed irq indexes of a vfio-pci device (<c>VFIO_PCI_*_IRQ_INDEX</c>); see <see cref="VfioPci"/>.</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
public enum VfioPciIrqIndex : uint
{
    /// <summary>INTX: legacy line interrupt.</summary>
    Intx = 0,
    /// <summary>MSI.</summary>
    Msi = 1,
    /// <summary>MSIX.</summary>
    Msix = 2,
    /// <summary>ERR: AER error notification.</summary>
    Err = 3,
    /// <summary>REQ: device release request.</summary>
    Req = 4,
}
