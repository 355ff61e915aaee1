namespace VfioLab.Abi;

/// <summary>The <c>op</c> of <see cref="VfioEehPeOp"/> (<c>VFIO_EEH_PE_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
public enum EehPeOperation : uint
{
    /// <summary>DISABLE: disable EEH.</summary>
    Disable = 0,
    /// <summary>ENABLE: enable EEH.</summary>
    Enable = 1,
    /// <summary>UNFREEZE_IO: enable IO for a frozen PE.</summary>
    UnfreezeIo = 2,
    /// <summary>UNFREEZE_DMA: enable DMA for a frozen PE.</summary>
    UnfreezeDma = 3,
    /// <summary>GET_STATE: return the PE state (<see cref="EehPeState"/>).</summary>
    GetState = 4,
    /// <summary>RESET_DEACTIVATE: deassert PE reset.</summary>
    ResetDeactivate = 5,
    /// <summary>RESET_HOT: assert hot reset.</summary>
    ResetHot = 6,
    /// <summary>RESET_FUNDAMENTAL: assert fundamental reset.</summary>
    ResetFundamental = 7,
    /// <summary>CONFIGURE: configure the PE after reset.</summary>
    Configure = 8,
    /// <summary>INJECT_ERR: inject the error in <c>err</c>.</summary>
    InjectErr = 9,
}
