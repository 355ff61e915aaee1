namespace VfioLab.Abi;

/// <summary>Flags of <see cref="VfioIrqInfo"/> (<c>VFIO_IRQ_INFO_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
[Flags]
public enum IrqInfoFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>EVENTFD: the index signals through eventfds.</summary>
    Eventfd = 1,
    /// <summary>MASKABLE: supports the MASK and UNMASK actions.</summary>
    Maskable = 2,
    /// <summary>AUTOMASKED: masked by VFIO after each signal (level-triggered).</summary>
    Automasked = 4,
    /// <summary>NORESIZE: vectors are set up as a set; adding one needs disabling the index first.</summary>
    Noresize = 8,
}
