namespace VfioLab.Lab;

/// <summary>The reset method the PCI core finds for a function, which decides VFIO_DEVICE_FLAGS_RESET and whether
/// VFIO_DEVICE_RESET works (vfio-pci's <c>reset_works</c>).</summary>
public enum LabPciReset
{
    /// <summary>PCIe function-level reset (needs a PCI Express function).</summary>
    Flr,

    /// <summary>PM reset (a D3hot-D0 transition; the PM capability has No_Soft_Reset clear).</summary>
    Pm,

    /// <summary>Slot reset: works only while the function is alone in its slot.</summary>
    Slot,

    /// <summary>Secondary bus reset: works only while the function is alone on its bus.</summary>
    Bus,

    /// <summary>No reset method.</summary>
    None,
}
