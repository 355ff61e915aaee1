namespace VfioLab.Pci;

/// <summary>The PCI command register bits the model uses (<c>PCI_COMMAND_*</c> in
/// include/uapi/linux/pci_regs.h), at config offset 0x04.</summary>
[Flags]
internal enum PciCommand : ushort
{
    /// <summary>Nothing enabled: the state after reset.</summary>
    None = 0,

    /// <summary>PCI_COMMAND_IO: I/O space decode.</summary>
    Io = 0x1,

    /// <summary>PCI_COMMAND_MEMORY: memory space decode; when clear, the BARs do not respond.</summary>
    Memory = 0x2,

    /// <summary>PCI_COMMAND_MASTER: bus mastering (DMA).</summary>
    Master = 0x4,

    /// <summary>PCI_COMMAND_INTX_DISABLE.</summary>
    IntxDisable = 0x400,
}
