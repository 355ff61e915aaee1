namespace VfioLab.Abi;

/// <summary>PE states returned by <see cref="EehPeOperation.GetState"/> (<c>VFIO_EEH_PE_STATE_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
public enum EehPeState : uint
{
    /// <summary>NORMAL: functional.</summary>
    Normal = 0,
    /// <summary>RESET: reset in progress.</summary>
    Reset = 1,
    /// <summary>STOPPED: DMA and IO stopped.</summary>
    Stopped = 2,
    /// <summary>STOPPED_DMA: DMA stopped only.</summary>
    StoppedDma = 4,
    /// <summary>UNAVAIL: state unavailable.</summary>
    Unavail = 5,
}
