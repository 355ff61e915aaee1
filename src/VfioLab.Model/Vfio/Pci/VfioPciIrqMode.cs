namespace VfioLab.Vfio.Pci;

/// <summary>Which interrupt index a vfio-pci device has enabled (<c>vdev-&gt;irq_type</c>; none is VFIO_PCI_NUM_IRQS).</summary>
internal enum VfioPciIrqMode
{
    /// <summary>Nothing enabled.</summary>
    None,

    /// <summary>INTx, with its one vector.</summary>
    Intx,

    /// <summary>MSI.</summary>
    Msi,

    /// <summary>MSI-X.</summary>
    Msix,
}
