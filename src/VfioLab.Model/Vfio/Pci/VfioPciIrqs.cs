using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Pci;

namespace VfioLab.Vfio.Pci;

/// <summary>
/// vfio-pci's interrupt state for one device (the <c>igate</c>-protected part of <c>struct vfio_pci_core_device</c>
/// and drivers/vfio/pci/vfio_pci_intrs.c): which index is enabled, the trigger eventfd of each vector, INTx's masked
/// state (automasked on each interrupt, masked by the user or by the virtual INTx-disable bit), the INTx unmask
/// eventfd, the error and request triggers, and <c>msi_qmax</c>. The device raising an interrupt signals the trigger.
/// </summary>
/// <remarks>
/// Lock: <c>_gate</c> (igate plus irqlock, a leaf) protects every field. The physical side of enabling (MSI and MSI-X
/// enable bits, INTx disable) is written to the function's config space under it; the function's own lock is taken
/// inside. MSI-X vectors are allocated dynamically past the first enable (<c>has_dyn_msix</c>, x86 with interrupt
/// remapping); MSI vectors are fixed by the enable.
/// </remarks>
internal sealed class VfioPciIrqs(PciFunction function)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, EventFd?> _vectors = [];
    private int _allocated;
    private bool _intxMasked;
    private bool _intxPending;
    private bool _virqDisabled;
    private EventFd? _intxUnmask;
    private EventFd? _err;
    private EventFd? _req;

    /// <summary>The index enabled now.</summary>
    public VfioPciIrqMode Mode { get; private set; }

    /// <summary><c>msi_qmax</c>: log2 of the MSI vectors the last MSI enable allocated (what reads of the virtual MSI
    /// Multiple Message Capable field show); 0 until MSI is first enabled.</summary>
    public int MsiQmax { get; private set; }

    /// <summary>A snapshot for inspection.</summary>
    public VfioPciIrqSnapshot Snapshot()
    {
        lock (_gate)
        {
            int[] triggers = [.. _vectors.Where(kv => kv.Value is not null).Select(kv => kv.Key).Order()];
            return new VfioPciIrqSnapshot(Mode, Mode == VfioPciIrqMode.Intx ? 1 : _allocated, triggers,
                Mode == VfioPciIrqMode.Intx && _intxMasked, _intxUnmask is not null, _err is not null, _req is not null);
        }
    }

    /// <summary>vfio_pci_get_irq_count: the vectors of index <paramref name="index"/>.</summary>
    public static int Count(PciFunction f, uint index)
    {
        PciDeviceDescription d = f.Description;
        return (VfioPciIrqIndex)index switch
        {
            VfioPciIrqIndex.Intx => f.ReadConfigByte(PciConfigImage.InterruptPin) != 0 ? 1 : 0,
            VfioPciIrqIndex.Msi => d.MsiVectors > 0 ? 1 << ((f.ReadConfigWord(PciConfigImage.CapabilityOffset(d, PciConfigImage.CapIdMsi) + PciConfigImage.MsiFlags) & PciConfigImage.MsiFlagsQmask) >> 1) : 0,
            VfioPciIrqIndex.Msix => d.MsixVectors > 0 ? (f.ReadConfigWord(PciConfigImage.CapabilityOffset(d, PciConfigImage.CapIdMsix) + PciConfigImage.MsixFlags) & PciConfigImage.MsixFlagsQsize) + 1 : 0,
            VfioPciIrqIndex.Err => d.Express ? 1 : 0,
            VfioPciIrqIndex.Req => 1,
            _ => 0,
        };
    }

    /// <summary>vfio_pci_set_irqs_ioctl after validation: the action of <paramref name="flags"/> on vectors
    /// [<paramref name="start"/>, +<paramref name="count"/>) of <paramref name="index"/>, with the per-vector
    /// <paramref name="data"/>; <paramref name="lookup"/> is <c>eventfd_ctx_fdget</c> in the caller's fd table.
    /// ENOTTY for an action the index lacks (MSI/MSI-X masking, any ERR/REQ action but trigger, ERR on conventional PCI).</summary>
    public Errno Set(IrqSetFlags flags, uint index, uint start, uint count, ReadOnlySpan<byte> data, Func<int, (Errno, EventFd?)> lookup)
    {
        IrqSetFlags action = flags & (IrqSetFlags.ActionMask | IrqSetFlags.ActionUnmask | IrqSetFlags.ActionTrigger);
        lock (_gate)
        {
            switch ((VfioPciIrqIndex)index)
            {
                case VfioPciIrqIndex.Intx when action == IrqSetFlags.ActionMask:
                    return IntxMask(flags, start, count, data);
                case VfioPciIrqIndex.Intx when action == IrqSetFlags.ActionUnmask:
                    return IntxUnmask(flags, start, count, data, lookup);
                case VfioPciIrqIndex.Intx when action == IrqSetFlags.ActionTrigger:
                    return IntxTrigger(flags, start, count, data, lookup);
                case VfioPciIrqIndex.Msi or VfioPciIrqIndex.Msix when action == IrqSetFlags.ActionTrigger:
                    return MsiTrigger(flags, index == (uint)VfioPciIrqIndex.Msix, start, count, data, lookup);
                case VfioPciIrqIndex.Err when action == IrqSetFlags.ActionTrigger && function.Description.Express:
                    return start != 0 || count > 1 ? Refusals.Refuse(Errno.EINVAL, "vfio_pci_set_err_trigger", "ERR has one vector: start {0} count {1}", start, count) : SingleTrigger(ref _err, flags, count, data, lookup);
                case VfioPciIrqIndex.Req when action == IrqSetFlags.ActionTrigger:
                    return start != 0 || count > 1 ? Refusals.Refuse(Errno.EINVAL, "vfio_pci_set_req_trigger", "REQ has one vector: start {0} count {1}", start, count) : SingleTrigger(ref _req, flags, count, data, lookup);
                default:
                    return Refusals.Refuse(Errno.ENOTTY, "vfio_pci_set_irqs_ioctl", "index {0} has no handler for action 0x{1:x} on this device", index, (ulong)action);
            }
        }
    }

    /// <summary>The device asserts vector <paramref name="vector"/> of <paramref name="index"/> (INTx, an MSI or
    /// MSI-X message, an AER error, a release request). Returns whether a trigger eventfd was signalled.</summary>
    public bool Raise(VfioPciIrqIndex index, int vector)
    {
        lock (_gate)
        {
            switch (index)
            {
                case VfioPciIrqIndex.Intx:
                    if (Mode != VfioPciIrqMode.Intx || vector != 0)
                    {
                        return false;
                    }
                    if (_intxMasked)
                    {
                        // Level-triggered and masked (DisINTx set): the interrupt stays pending until unmasked.
                        _intxPending = true;
                        return false;
                    }
                    // vfio_intx_handler: automask (pci_check_and_mask_intx), then signal.
                    MaskIntxLocked(true);
                    _intxPending = true;
                    return SignalIntxLocked();
                case VfioPciIrqIndex.Msi or VfioPciIrqIndex.Msix:
                    VfioPciIrqMode want = index == VfioPciIrqIndex.Msi ? VfioPciIrqMode.Msi : VfioPciIrqMode.Msix;
                    if (Mode != want || !_vectors.TryGetValue(vector, out EventFd? trigger) || trigger is null)
                    {
                        return false;
                    }
                    trigger.Signal();
                    return true;
                case VfioPciIrqIndex.Err:
                    _err?.Signal();
                    return _err is not null;
                case VfioPciIrqIndex.Req:
                    _req?.Signal();
                    return _req is not null;
                default:
                    return false;
            }
        }
    }

    /// <summary>The virtual INTx-disable bit of the command register changed (vfio_basic_config_write's emulation):
    /// setting it masks INTx, clearing it unmasks.</summary>
    public void SetVirqDisabled(bool disabled)
    {
        lock (_gate)
        {
            if (disabled && !_virqDisabled)
            {
                _virqDisabled = true;
                MaskIntxLocked(true);
            }
            else if (!disabled && _virqDisabled)
            {
                _virqDisabled = false;
                UnmaskIntxLocked();
            }
        }
    }

    /// <summary>vfio_pci_core_disable and close_device: the enabled index is torn down and the error and request
    /// triggers dropped; nothing stays enabled for the next user.</summary>
    public void Release()
    {
        lock (_gate)
        {
            DisableLocked();
            _err = null;
            _req = null;
            _virqDisabled = false;
            MsiQmax = 0;
        }
    }

    private Errno IntxMask(IrqSetFlags flags, uint start, uint count, ReadOnlySpan<byte> data)
    {
        if (Mode != VfioPciIrqMode.Intx || start != 0 || count != 1)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_pci_set_intx_mask", "INTx is not enabled, or start {0} count {1} is not 0 and 1", start, count);
        }
        if ((flags & IrqSetFlags.DataEventfd) != 0)
        {
            return Refusals.Refuse(Errno.ENOTTY, "vfio_pci_set_intx_mask", "masking through an eventfd is not implemented"); // masking through an eventfd is not implemented by vfio-pci
        }
        if ((flags & IrqSetFlags.DataNone) != 0 || data[0] != 0)
        {
            MaskIntxLocked(true);
        }
        return Errno.None;
    }

    private Errno IntxUnmask(IrqSetFlags flags, uint start, uint count, ReadOnlySpan<byte> data, Func<int, (Errno, EventFd?)> lookup)
    {
        if (Mode != VfioPciIrqMode.Intx || start != 0 || count != 1)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_pci_set_intx_unmask", "INTx is not enabled, or start {0} count {1} is not 0 and 1", start, count);
        }
        if ((flags & IrqSetFlags.DataEventfd) != 0)
        {
            int fd = ReadFd(data, 0);
            if (fd < 0)
            {
                SetIntxUnmaskLocked(null); // vfio_virqfd_disable
                return Errno.None;
            }
            (Errno e, EventFd? efd) = lookup(fd);
            if (e != Errno.None)
            {
                return e;
            }
            if (_intxUnmask is not null)
            {
                return Refusals.Refuse(Errno.EBUSY, "vfio_virqfd_enable", "an unmask eventfd is already set"); // vfio_virqfd_enable: one unmask irqfd at a time
            }
            SetIntxUnmaskLocked(efd);
            if (efd!.Count > 0)
            {
                // vfio_virqfd_enable: an event already pending on the eventfd runs the handler at once.
                UnmaskIntxLocked();
            }
            return Errno.None;
        }
        if ((flags & IrqSetFlags.DataNone) != 0 || data[0] != 0)
        {
            UnmaskIntxLocked();
        }
        return Errno.None;
    }

    private Errno IntxTrigger(IrqSetFlags flags, uint start, uint count, ReadOnlySpan<byte> data, Func<int, (Errno, EventFd?)> lookup)
    {
        if (Mode == VfioPciIrqMode.Intx && count == 0 && (flags & IrqSetFlags.DataNone) != 0)
        {
            DisableLocked();
            return Errno.None;
        }
        if (!(Mode is VfioPciIrqMode.Intx or VfioPciIrqMode.None) || start != 0 || count != 1)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_pci_set_intx_trigger", "another interrupt mode is enabled, or start {0} count {1} is not 0 and 1", start, count);
        }
        if ((flags & IrqSetFlags.DataEventfd) != 0)
        {
            int fd = ReadFd(data, 0);
            EventFd? trigger = null;
            if (fd >= 0)
            {
                (Errno e, trigger) = lookup(fd);
                if (e != Errno.None)
                {
                    return e;
                }
            }
            if (Mode == VfioPciIrqMode.None)
            {
                // vfio_intx_enable: the virtual mask follows the virtual INTx-disable bit.
                Mode = VfioPciIrqMode.Intx;
                _intxMasked = false;
                _intxPending = false;
                MaskIntxLocked(_virqDisabled);
            }
            _vectors[0] = trigger;
            return Errno.None;
        }
        if (Mode != VfioPciIrqMode.Intx)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_pci_set_intx_trigger", "INTx is not enabled");
        }
        if ((flags & IrqSetFlags.DataNone) != 0 || data[0] != 0)
        {
            SignalIntxLocked(); // loopback: vfio_send_intx_eventfd
        }
        return Errno.None;
    }

    private Errno MsiTrigger(IrqSetFlags flags, bool msix, uint start, uint count, ReadOnlySpan<byte> data, Func<int, (Errno, EventFd?)> lookup)
    {
        VfioPciIrqMode mode = msix ? VfioPciIrqMode.Msix : VfioPciIrqMode.Msi;
        if (Mode == mode && count == 0 && (flags & IrqSetFlags.DataNone) != 0)
        {
            DisableLocked();
            return Errno.None;
        }
        if (!(Mode == mode || Mode == VfioPciIrqMode.None))
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_pci_set_msi_trigger", "another interrupt mode is enabled");
        }
        if ((flags & IrqSetFlags.DataEventfd) != 0)
        {
            bool enabled = false;
            if (Mode == VfioPciIrqMode.None)
            {
                if (start + count == 0)
                {
                    return Refusals.Refuse(Errno.ERANGE, "vfio_msi_enable", "enabling 0 vectors (pci_alloc_irq_vectors(1, 0))"); // pci_alloc_irq_vectors(1, 0): no vector range
                }
                // vfio_msi_enable: allocate start + count vectors and turn the capability on.
                Mode = mode;
                _allocated = (int)(start + count);
                if (!msix)
                {
                    MsiQmax = System.Numerics.BitOperations.Log2((uint)((_allocated * 2) - 1));
                }
                function.UpdateConfigWord(msix ? PciConfigImage.CapabilityOffset(function.Description, PciConfigImage.CapIdMsix) + PciConfigImage.MsixFlags : PciConfigImage.CapabilityOffset(function.Description, PciConfigImage.CapIdMsi) + PciConfigImage.MsiFlags,
                    msix ? PciConfigImage.MsixFlagsEnable : PciConfigImage.MsiFlagsEnable, set: true);
                enabled = true;
            }
            Errno e = SetBlock(msix, start, count, data, lookup);
            if (e != Errno.None && enabled)
            {
                DisableLocked();
            }
            return e;
        }
        if (Mode != mode)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_pci_set_msi_trigger", "another interrupt mode is enabled");
        }
        for (uint i = 0; i < count; i++)
        {
            if (_vectors.TryGetValue((int)(start + i), out EventFd? trigger) && trigger is not null &&
                ((flags & IrqSetFlags.DataNone) != 0 || data[(int)i] != 0))
            {
                trigger.Signal();
            }
        }
        return Errno.None;
    }

    // vfio_msi_set_block: each vector's trigger is replaced (fd < 0 only tears it down); an MSI vector past the ones
    // allocated is EINVAL, an MSI-X one is allocated dynamically. A failure tears down the vectors already set.
    private Errno SetBlock(bool msix, uint start, uint count, ReadOnlySpan<byte> data, Func<int, (Errno, EventFd?)> lookup)
    {
        for (uint i = 0; i < count; i++)
        {
            int vector = (int)(start + i);
            int fd = ReadFd(data, (int)i);
            Errno e = Errno.None;
            _vectors.Remove(vector);
            if (fd >= 0)
            {
                if (vector >= _allocated && !msix)
                {
                    e = Refusals.Refuse(Errno.EINVAL, "vfio_msi_set_block", "MSI vector {0} is past the {1} allocated", (ulong)vector, (ulong)_allocated);
                }
                else
                {
                    (e, EventFd? trigger) = lookup(fd);
                    if (e == Errno.None)
                    {
                        _vectors[vector] = trigger;
                        _allocated = Math.Max(_allocated, vector + 1);
                    }
                }
            }
            if (e != Errno.None)
            {
                for (uint j = 0; j < i; j++)
                {
                    _vectors.Remove((int)(start + j));
                }
                return e;
            }
        }
        return Errno.None;
    }

    private static Errno SingleTrigger(ref EventFd? slot, IrqSetFlags flags, uint count, ReadOnlySpan<byte> data, Func<int, (Errno, EventFd?)> lookup)
    {
        // vfio_pci_set_ctx_trigger_single: DATA_NONE and DATA_BOOL are loopback tests of an installed trigger.
        if ((flags & IrqSetFlags.DataNone) != 0)
        {
            if (slot is null)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_pci_set_ctx_trigger_single", "no trigger is set to signal");
            }
            if (count != 0)
            {
                slot.Signal();
            }
            else
            {
                slot = null;
            }
            return Errno.None;
        }
        if (count == 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_pci_set_ctx_trigger_single", "count is 0");
        }
        if ((flags & IrqSetFlags.DataBool) != 0)
        {
            if (data[0] != 0)
            {
                slot?.Signal();
            }
            return Errno.None;
        }
        int fd = ReadFd(data, 0);
        if (fd == -1)
        {
            slot = null;
        }
        else if (fd >= 0)
        {
            (Errno e, EventFd? efd) = lookup(fd);
            if (e != Errno.None)
            {
                return e;
            }
            slot = efd;
        }
        return Errno.None;
    }

    private void DisableLocked()
    {
        switch (Mode)
        {
            case VfioPciIrqMode.Intx:
                SetIntxUnmaskLocked(null);
                MaskIntxLocked(false);
                break;
            case VfioPciIrqMode.Msi:
                function.UpdateConfigWord(PciConfigImage.CapabilityOffset(function.Description, PciConfigImage.CapIdMsi) + PciConfigImage.MsiFlags, PciConfigImage.MsiFlagsEnable, set: false);
                break;
            case VfioPciIrqMode.Msix:
                function.UpdateConfigWord(PciConfigImage.CapabilityOffset(function.Description, PciConfigImage.CapIdMsix) + PciConfigImage.MsixFlags, PciConfigImage.MsixFlagsEnable, set: false);
                break;
        }
        _vectors.Clear();
        _allocated = 0;
        _intxMasked = false;
        _intxPending = false;
        Mode = VfioPciIrqMode.None;
    }

    // vfio_pci_intx_mask and the handler's automask: DisINTx in the physical command register follows the mask.
    private void MaskIntxLocked(bool masked)
    {
        if (Mode == VfioPciIrqMode.Intx)
        {
            _intxMasked = masked;
        }
        function.UpdateConfigWord(PciFunction.CommandOffset, (ushort)PciCommand.IntxDisable, masked);
    }

    // The INTx unmask virqfd: a user's write to the eventfd unmasks as VFIO_IRQ_SET_ACTION_UNMASK would
    // (vfio_pci_intx_unmask_handler, run from virqfd_wakeup). The handler takes the gate itself: the eventfd runs it
    // after releasing its own lock, and it does nothing once another eventfd (or none) has replaced this one.
    private void SetIntxUnmaskLocked(EventFd? efd)
    {
        _intxUnmask?.SetWaiter(null);
        _intxUnmask = efd;
        efd?.SetWaiter(OnIntxUnmaskSignalled);
    }

    private void OnIntxUnmaskSignalled(EventFd efd)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_intxUnmask, efd))
            {
                UnmaskIntxLocked();
            }
        }
    }

    // vfio_pci_intx_unmask: a level still asserted re-masks and is sent to the user again.
    private void UnmaskIntxLocked()
    {
        if (Mode != VfioPciIrqMode.Intx)
        {
            function.UpdateConfigWord(PciFunction.CommandOffset, (ushort)PciCommand.IntxDisable, false);
            return;
        }
        if (!_intxMasked || _virqDisabled)
        {
            return;
        }
        if (_intxPending)
        {
            _intxPending = false;
            SignalIntxLocked();
            return;
        }
        MaskIntxLocked(false);
    }

    private bool SignalIntxLocked()
    {
        if (Mode == VfioPciIrqMode.Intx && !_virqDisabled && _vectors.TryGetValue(0, out EventFd? trigger) && trigger is not null)
        {
            trigger.Signal();
            return true;
        }
        return false;
    }

    private static int ReadFd(ReadOnlySpan<byte> data, int vector) =>
        data.IsEmpty ? -1 : System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(data[(vector * 4)..]);
}

/// <summary>What <see cref="VfioPciIrqs"/> holds at one moment.</summary>
/// <param name="Mode">The enabled index.</param>
/// <param name="Vectors">Vectors allocated for it (1 for INTx).</param>
/// <param name="TriggerVectors">Vectors with a trigger eventfd, ascending.</param>
/// <param name="IntxMasked">INTx enabled and masked.</param>
/// <param name="IntxUnmaskEventFd">An INTx unmask eventfd is registered.</param>
/// <param name="ErrTrigger">An error (AER) trigger is set.</param>
/// <param name="ReqTrigger">A device-request trigger is set.</param>
internal sealed record VfioPciIrqSnapshot(VfioPciIrqMode Mode, int Vectors, IReadOnlyList<int> TriggerVectors, bool IntxMasked,
    bool IntxUnmaskEventFd, bool ErrTrigger, bool ReqTrigger);
