using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Vfio;

/// <summary>
/// VFIO_DEVICE_GET_INFO as every driver answers it without capabilities: copy <c>minsz</c> (16)
/// bytes in (EFAULT), <c>argsz</c> below it is EINVAL, then copy back <c>min(argsz, sizeof)</c> with the
/// v6.6+ 24-byte struct ("vfio: align capability structures" added <c>pad</c>), so nothing past
/// argsz is written and <c>cap_offset</c>/<c>pad</c> go back as zero.
/// </summary>
internal static class DeviceInfoReply
{
    /// <summary>sizeof(struct vfio_device_info) since v6.6; the 6.1 header mirrored by Abi has 20.</summary>
    public const int SizeV66 = 24;

    /// <summary>Answers the ioctl with the driver's flags and counts; 0 or -errno. <paramref name="preV66Size"/>
    /// (vfio-pci under <c>linux-6.1</c>) copies back what vfio_pci_ioctl_get_info did before a881b496941f.</summary>
    public static long Answer(ref IoctlArgument arg, DeviceInfoFlags flags, uint regions, uint irqs, bool preV66Size = false)
    {
        Span<byte> buf = stackalloc byte[SizeV66];
        buf.Clear();
        if (!arg.TryCopyFrom(0, buf[..VfioDeviceInfo.MinSize]))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_info", "copy_from_user of the first {0} bytes of struct vfio_device_info faulted",
                (ulong)VfioDeviceInfo.MinSize);
        }
        VfioDeviceInfo.TryRead(buf, VfioDeviceInfo.MinSize, out VfioDeviceInfo info);
        if (info.Argsz < VfioDeviceInfo.MinSize)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_ioctl_get_info", "argsz {0} is below minsz {1}", info.Argsz, (ulong)VfioDeviceInfo.MinSize);
        }
        // Before v6.6: minsz = offsetofend(num_irqs), raised to capsz (20, offsetofend(cap_offset)) when argsz allows.
        int outLength = !preV66Size ? (int)Math.Min(info.Argsz, (uint)SizeV66)
            : info.Argsz >= VfioDeviceInfo.SizeOf ? VfioDeviceInfo.SizeOf : VfioDeviceInfo.MinSize;
        info.Flags = flags;
        info.NumRegions = regions;
        info.NumIrqs = irqs;
        info.CapOffset = 0;
        info.Write(buf);
        return arg.TryCopyTo(0, buf[..outLength]) ? 0 : Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_info", "copy_to_user of {0} bytes faulted", (ulong)outLength);
    }
}
