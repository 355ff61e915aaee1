namespace VfioLab.Pci;

/// <summary>
/// The reset method the PCI core finds for a function (<c>pci_init_reset_methods</c> in drivers/pci/pci.c):
/// what <c>pci_try_reset_function</c> would use, so whether vfio-pci's <c>reset_works</c> is true.
/// </summary>
internal enum PciResetMethod
{
    /// <summary>PCIe function-level reset: DEVCAP has FLR (<c>pcie_reset_flr</c>); needs a PCI Express function.</summary>
    Flr,

    /// <summary>PM reset: a D3hot-D0 transition resets the function (PM capability with No_Soft_Reset clear, <c>pci_pm_reset</c>).</summary>
    Pm,

    /// <summary>A reset of the slot the function sits in (<c>pci_reset_hotplug_slot</c>).</summary>
    Slot,

    /// <summary>A secondary bus reset of the parent bridge (<c>pci_parent_bus_reset</c>).</summary>
    Bus,

    /// <summary>No method: <c>pci_try_reset_function</c> answers ENOTTY, so vfio-pci has no VFIO_DEVICE_FLAGS_RESET.</summary>
    None,
}
