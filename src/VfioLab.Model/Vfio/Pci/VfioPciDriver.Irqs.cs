using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Vfio.Pci;

// VFIO_DEVICE_GET_IRQ_INFO and VFIO_DEVICE_SET_IRQS (vfio_pci_ioctl_get_irq_info, vfio_pci_ioctl_set_irqs and
// vfio_set_irqs_validate_and_prepare in vfio_main.c; the actions are VfioPciIrqs').
internal sealed partial class VfioPciDriver
{
    private const IrqSetFlags DataTypeMask = IrqSetFlags.DataNone | IrqSetFlags.DataBool | IrqSetFlags.DataEventfd;
    private const IrqSetFlags ActionTypeMask = IrqSetFlags.ActionMask | IrqSetFlags.ActionUnmask | IrqSetFlags.ActionTrigger;

    /// <summary>
    /// GET_IRQ_INFO: EFAULT (copies), EINVAL (argsz below 16, an index past REQ, ERR on a conventional PCI function).
    /// Every index signals through eventfds; INTx is maskable and automasked, the others cannot be resized; the
    /// count is <see cref="VfioPciIrqs.Count"/> (INTx 0 without an interrupt pin). Only the 16 bytes are copied back.
    /// </summary>
    private static long GetIrqInfo(VfioPciDevice pci, ref IoctlArgument arg)
    {
        Span<byte> buf = stackalloc byte[VfioIrqInfo.SizeOf];
        if (!arg.TryCopyFrom(0, buf))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_irq_info", "copy_from_user of the {0}-byte struct vfio_irq_info faulted", (ulong)buf.Length);
        }
        VfioIrqInfo.TryRead(buf, out VfioIrqInfo info);
        if (info.Argsz < VfioIrqInfo.MinSize || info.Index >= VfioPci.NumIrqs)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_ioctl_get_irq_info", info.Argsz < VfioIrqInfo.MinSize
                ? "argsz {0} is below minsz {1}"
                : "irq index {2} is not one of the {3} vfio-pci indexes", info.Argsz, (ulong)VfioIrqInfo.MinSize, info.Index, (ulong)VfioPci.NumIrqs);
        }
        if (info.Index == (uint)VfioPciIrqIndex.Err && !pci.Function.Description.Express)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_ioctl_get_irq_info", "the ERR index exists only on PCI Express devices");
        }
        info.Flags = IrqInfoFlags.Eventfd | (info.Index == (uint)VfioPciIrqIndex.Intx
            ? IrqInfoFlags.Maskable | IrqInfoFlags.Automasked
            : IrqInfoFlags.Noresize);
        info.Count = (uint)VfioPciIrqs.Count(pci.Function, info.Index);
        info.Write(buf);
        return arg.TryCopyTo(0, buf) ? 0 : Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_irq_info", "copy_to_user of struct vfio_irq_info faulted");
    }

    /// <summary>
    /// SET_IRQS: EFAULT (the header or the data cannot be copied in); EINVAL from validation (argsz below 20, an index
    /// past REQ, <c>count &gt;= U32_MAX - start</c>, an unknown flag, <c>start</c> or <c>start + count</c> past the
    /// index's vectors, not exactly one known DATA type, argsz too small for the data) and from the action (wrong
    /// index enabled, INTx start/count other than 0/1, an MSI vector past those allocated, DATA_NONE on an unset
    /// ERR/REQ trigger); ENOTTY for an action the index lacks (MASK/UNMASK of MSI and MSI-X, ERR on conventional
    /// PCI, no or several ACTION bits, INTx MASK with an eventfd); EBADF and EINVAL from <c>eventfd_ctx_fdget</c>;
    /// EBUSY for a second INTx unmask eventfd; ERANGE for enabling MSI/MSI-X with no vector. A failed action leaves
    /// the state as it was (the vectors it set are torn down again).
    /// </summary>
    private static long SetIrqs(VfioCallContext context, VfioPciDevice pci, ref IoctlArgument arg)
    {
        Span<byte> buf = stackalloc byte[VfioIrqSet.SizeOf];
        if (!arg.TryCopyFrom(0, buf))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_set_irqs", "copy_from_user of the {0}-byte struct vfio_irq_set faulted", (ulong)buf.Length);
        }
        VfioIrqSet.TryRead(buf, out VfioIrqSet hdr);
        int max = VfioPciIrqs.Count(pci.Function, hdr.Index);
        if (hdr.Argsz < VfioIrqSet.MinSize || hdr.Index >= VfioPci.NumIrqs || hdr.Count >= uint.MaxValue - hdr.Start ||
            (hdr.Flags & ~(DataTypeMask | ActionTypeMask)) != 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_set_irqs_validate_and_prepare",
                "argsz {0} (minsz {1}), index {2} (of {3}), start+count or flags 0x{4} out of bounds", hdr.Argsz, (ulong)VfioIrqSet.MinSize, hdr.Index,
                (ulong)VfioPci.NumIrqs, ((uint)hdr.Flags).ToString("x", System.Globalization.CultureInfo.InvariantCulture));
        }
        if (hdr.Start >= (uint)max || (ulong)hdr.Start + hdr.Count > (ulong)max)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_set_irqs_validate_and_prepare", "vectors [{0}, +{1}) of index {2} pass its {3} vectors", hdr.Start, hdr.Count,
                hdr.Index, (ulong)max);
        }
        ulong size = (hdr.Flags & DataTypeMask) switch
        {
            IrqSetFlags.DataNone => 0,
            IrqSetFlags.DataBool => 1,
            IrqSetFlags.DataEventfd => 4,
            _ => ulong.MaxValue,
        };
        if (size == ulong.MaxValue)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_set_irqs_validate_and_prepare", "flags 0x{0:x} name no single data type (NONE, BOOL or EVENTFD)", (ulong)hdr.Flags);
        }
        ulong dataSize = hdr.Count * size;
        if (size != 0 && hdr.Argsz - (ulong)VfioIrqSet.MinSize < dataSize)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_set_irqs_validate_and_prepare", "argsz {0} leaves less than the {1} data bytes {2} vectors need", hdr.Argsz,
                dataSize, hdr.Count);
        }
        byte[] data = new byte[dataSize];
        if (dataSize != 0 && !arg.TryCopyFrom(VfioIrqSet.Offsets.Data, data))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_set_irqs", "copy_from_user of {0} data bytes faulted", dataSize);
        }
        Host.Process process = context.Process;
        Errno e = pci.Irqs.Set(hdr.Flags, hdr.Index, hdr.Start, hdr.Count, data, fd =>
        {
            Errno found = EventFd.TryGet(process, fd, out EventFd? efd);
            return (found, efd);
        });
        return e == Errno.None ? 0 : e.AsReturn();
    }
}
