namespace VfioLab.Lab;

/// <summary>A vfio-pci interrupt index (<c>VFIO_PCI_*_IRQ_INDEX</c>).</summary>
public enum LabIrqIndex
{
    /// <summary>INTx (legacy, level-triggered).</summary>
    Intx,

    /// <summary>MSI.</summary>
    Msi,

    /// <summary>MSI-X.</summary>
    Msix,

    /// <summary>PCIe AER error notification.</summary>
    Err,

    /// <summary>Device release request.</summary>
    Req,
}
