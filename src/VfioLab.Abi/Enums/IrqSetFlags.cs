namespace VfioLab.Abi;

/// <summary>Flags of <see cref="VfioIrqSet"/> (<c>VFIO_IRQ_SET_*</c>): one DATA_* and one ACTION_* bit.</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
[Flags]
public enum IrqSetFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>DATA_NONE: no data follows.</summary>
    DataNone = 1,
    /// <summary>DATA_BOOL: one byte per vector.</summary>
    DataBool = 2,
    /// <summary>DATA_EVENTFD: one s32 eventfd per vector (-1 to tear down).</summary>
    DataEventfd = 4,
    /// <summary>ACTION_MASK: mask the vectors.</summary>
    ActionMask = 8,
    /// <summary>ACTION_UNMASK: unmask the vectors.</summary>
    ActionUnmask = 0x10,
    /// <summary>ACTION_TRIGGER: trigger, or set up the trigger of, the vectors.</summary>
    ActionTrigger = 0x20,
}
