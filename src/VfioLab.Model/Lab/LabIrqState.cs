namespace VfioLab.Lab;

/// <summary>
/// A snapshot of a vfio-pci device's interrupt set-up, as VFIO_DEVICE_SET_IRQS left it: the index enabled (null when
/// none), the vectors allocated for it, which vectors have a trigger eventfd, INTx's mask, and the INTx unmask, error
/// and request eventfds.
/// </summary>
/// <param name="Enabled">The index enabled: <see cref="LabIrqIndex.Intx"/>, <see cref="LabIrqIndex.Msi"/> or
/// <see cref="LabIrqIndex.Msix"/>; null when none is.</param>
/// <param name="Vectors">Vectors allocated for the enabled index (1 for INTx, 0 when none).</param>
/// <param name="TriggerVectors">Vectors with a trigger eventfd, ascending.</param>
/// <param name="IntxMasked">INTx is enabled and masked (by the user, the virtual INTx-disable bit, or automasking after an interrupt).</param>
/// <param name="IntxUnmaskEventFd">An eventfd that unmasks INTx is registered.</param>
/// <param name="ErrTrigger">An error (AER) trigger eventfd is set.</param>
/// <param name="ReqTrigger">A device-request trigger eventfd is set.</param>
public sealed record LabIrqState(LabIrqIndex? Enabled, int Vectors, IReadOnlyList<int> TriggerVectors, bool IntxMasked,
    bool IntxUnmaskEventFd, bool ErrTrigger, bool ReqTrigger);
