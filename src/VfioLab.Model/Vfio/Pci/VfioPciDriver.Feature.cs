using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Vfio.Pci;

// VFIO_DEVICE_FEATURE for a vfio-pci device without migration or DMA logging: the core's checks
// (vfio_ioctl_device_feature in vfio_main.c) and vfio_pci_core_ioctl_feature's power-management features. The
// model's functions are not SR-IOV physical functions, so PCI_VF_TOKEN answers ENOTTY (no vf_token). Low-power entry
// zaps the BAR mmaps and records the runtime-PM state (vfio_pci_runtime_pm_entry); the device is resumed around
// every later access, as Linux's pm_runtime wrappers do, so nothing else changes until exit.
internal sealed partial class VfioPciDriver
{
    /// <summary>sizeof the fixed part of <c>struct vfio_device_feature</c> (argsz, flags).</summary>
    private const int FeatureMinSize = 8;

    private const uint FeatureMask = 0xffff;
    private const uint FeatureGet = 1u << 16;
    private const uint FeatureSet = 1u << 17;
    private const uint FeatureProbe = 1u << 18;

    private const uint FeaturePciVfToken = 0;
    private const uint FeatureMigration = 1;
    private const uint FeatureMigDeviceState = 2;
    private const uint FeatureLowPowerEntry = 3;
    private const uint FeatureLowPowerEntryWithWakeup = 4;
    private const uint FeatureLowPowerExit = 5;
    private const uint FeatureDmaLoggingStart = 6;
    private const uint FeatureDmaLoggingStop = 7;
    private const uint FeatureDmaLoggingReport = 8;
    private const uint FeatureMigDataSize = 9;

    /// <summary>
    /// DEVICE_FEATURE: EFAULT (header copy), EINVAL (argsz below 8, an unknown flag, GET and SET together without
    /// PROBE, an op the feature does not support, neither GET nor SET without PROBE, too short a payload), ENOTTY
    /// (migration, DMA logging, the VF token and unknown features: none of them exists on this device). PROBE of a
    /// low-power feature with SET (or neither op) answers 0.
    /// </summary>
    private static long Feature(VfioCallContext context, VfioPciDevice pci, ref IoctlArgument arg)
    {
        Span<byte> buf = stackalloc byte[FeatureMinSize];
        if (!arg.TryCopyFrom(0, buf))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_ioctl_device_feature", "copy_from_user of the {0}-byte struct vfio_device_feature faulted", (ulong)buf.Length);
        }
        uint argsz = BinaryPrimitives.ReadUInt32LittleEndian(buf);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(buf[4..]);
        if (argsz < FeatureMinSize || (flags & ~(FeatureMask | FeatureGet | FeatureSet | FeatureProbe)) != 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_ioctl_device_feature", argsz < FeatureMinSize
                ? "argsz {0} is below minsz {1}"
                : "flags 0x{2:x} has bits outside the feature number, GET, SET and PROBE", argsz, (ulong)FeatureMinSize, flags);
        }
        if ((flags & FeatureProbe) == 0 && (flags & FeatureSet) != 0 && (flags & FeatureGet) != 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_ioctl_device_feature", "flags 0x{0:x}: GET and SET together need PROBE", flags);
        }
        ulong payload = argsz - (ulong)FeatureMinSize;
        switch (flags & FeatureMask)
        {
            case FeatureMigration or FeatureMigDeviceState or FeatureMigDataSize:
                return Refusals.RefuseReturn(Errno.ENOTTY, "vfio_ioctl_device_feature", "feature {0}: the driver has no migration ops", flags & FeatureMask);
            case FeatureDmaLoggingStart or FeatureDmaLoggingStop or FeatureDmaLoggingReport:
                return Refusals.RefuseReturn(Errno.ENOTTY, "vfio_ioctl_device_feature", "feature {0}: the driver has no DMA logging ops", flags & FeatureMask);
            case FeatureLowPowerEntry:
                return CheckSetOnly(flags, payload, 0) is long r1 && r1 != 1 ? r1 : LowPowerEntry(pci, null);
            case FeatureLowPowerEntryWithWakeup:
                {
                    if (CheckSetOnly(flags, payload, 4) is long r2 && r2 != 1)
                    {
                        return r2;
                    }
                    Span<byte> fdBytes = stackalloc byte[4];
                    if (!arg.TryCopyFrom(FeatureMinSize, fdBytes))
                    {
                        return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_core_pm_entry_with_wakeup", "copy_from_user of the wakeup eventfd faulted");
                    }
                    int fd = BinaryPrimitives.ReadInt32LittleEndian(fdBytes);
                    if (fd < 0)
                    {
                        return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_core_pm_entry_with_wakeup", "the wakeup eventfd {0} is negative", (ulong)(long)fd);
                    }
                    Errno e = EventFd.TryGet(context.Process, fd, out EventFd? wake);
                    return e != Errno.None ? e.AsReturn() : LowPowerEntry(pci, wake);
                }
            case FeatureLowPowerExit:
                {
                    if (CheckSetOnly(flags, payload, 0) is long r3 && r3 != 1)
                    {
                        return r3;
                    }
                    pci.MemoryLock.EnterWriteLock();
                    pci.LowPower = null;
                    pci.MemoryLock.ExitWriteLock();
                    return 0;
                }
            case FeaturePciVfToken:
                return Refusals.RefuseReturn(Errno.ENOTTY, "vfio_pci_core_feature_token", "the device is not an SR-IOV PF: it has no VF token"); // no vf_token
            default:
                return Refusals.RefuseReturn(Errno.ENOTTY, "vfio_pci_core_ioctl_feature", "feature {0} is not one vfio-pci knows", flags & FeatureMask);
        }
    }

    // vfio_check_feature with SET as the only op: an op it lacks is EINVAL, PROBE answers 0, then GET or SET is
    // required and the payload must hold the feature's struct; 1 means "go on".
    private static long CheckSetOnly(uint flags, ulong payload, ulong minsz)
    {
        if ((flags & FeatureGet) != 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_check_feature", "flags 0x{0:x}: this feature supports SET only, not GET", flags);
        }
        if ((flags & FeatureProbe) != 0)
        {
            return 0;
        }
        if ((flags & FeatureSet) == 0 || payload < minsz)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_check_feature", (flags & FeatureSet) == 0
                ? "flags 0x{0:x}: neither GET, SET nor PROBE"
                : "the payload of {1} bytes is below the feature's {2}", flags, payload, minsz);
        }
        return 1;
    }

    // vfio_pci_runtime_pm_entry: zap under memory_lock; EINVAL when already engaged.
    private static long LowPowerEntry(VfioPciDevice pci, EventFd? wake)
    {
        pci.MemoryLock.EnterWriteLock();
        try
        {
            pci.ZapBarsLocked();
            if (pci.LowPower is not null)
            {
                return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_runtime_pm_entry", "the device is already in low-power state");
            }
            pci.LowPower = new VfioPciLowPower(wake);
            return 0;
        }
        finally
        {
            pci.MemoryLock.ExitWriteLock();
        }
    }
}

/// <summary>A device in runtime low power (pm_runtime_engaged), with its wake-up eventfd if the user gave one.</summary>
internal sealed record VfioPciLowPower(EventFd? Wakeup);
