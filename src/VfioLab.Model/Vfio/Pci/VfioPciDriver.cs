using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Pci;

namespace VfioLab.Vfio.Pci;

/// <summary>
/// The vfio-pci bus driver (drivers/vfio/pci/vfio_pci_core.c): device and region info, function
/// reset, slot hot reset, config-space and BAR access through pread/pwrite, BAR mmaps faulted in under
/// <c>memory_lock</c>, and the operation that turns a BAR mmap into a pfn range. One instance serves
/// every vfio-pci device of a host (the module), so it knows the devices sharing a slot (their
/// <c>vfio_device_set</c>). Interrupts (GET_IRQ_INFO, SET_IRQS) and device features are in their own parts.
/// </summary>
/// <remarks>
/// Lock: <c>_gate</c> protects <c>_devices</c> and <c>_devSetLocks</c> (a leaf). A dev_set lock (one per slot)
/// is taken by hot reset before any device's memory_lock. Never change: the topology, the group lookup and
/// <see cref="Behavior"/>.
/// </remarks>
internal sealed partial class VfioPciDriver : IVfioDeviceDriver, IVfioDeviceMemory
{
    private readonly Lock _gate = new();
    private readonly List<VfioDevice> _devices = [];
    private readonly Dictionary<(int Domain, int Bus, int Device), OrderedLock> _devSetLocks = [];
    private readonly PciTopology _topology;
    private readonly Func<PciFunction, int?> _iommuGroupOf;

    /// <summary>A driver for the functions of <paramref name="topology"/>; <paramref name="iommuGroupOf"/>
    /// answers iommu_group_get for any function (null: no IOMMU group).</summary>
    public VfioPciDriver(PciTopology topology, Func<PciFunction, int?> iommuGroupOf, VfioPciBehavior? behavior = null)
    {
        _topology = topology;
        _iommuGroupOf = iommuGroupOf;
        Behavior = behavior ?? VfioPciBehavior.Default;
    }

    /// <summary>Version switches of the driver.</summary>
    public VfioPciBehavior Behavior { get; }

    /// <summary>Binds a device to the driver (vfio_pci_core_register_device: joins its slot's dev_set).</summary>
    public void AddDevice(VfioDevice device)
    {
        lock (_gate)
        {
            _devices.Add(device);
        }
    }

    /// <summary>Unbinds a device (vfio_pci_core_unregister_device).</summary>
    public void RemoveDevice(VfioDevice device)
    {
        lock (_gate)
        {
            _devices.Remove(device);
        }
    }

    /// <summary>sizeof(struct vfio_device_info) since v6.6 (see <see cref="DeviceInfoReply"/>).</summary>
    public const int DeviceInfoSizeV66 = DeviceInfoReply.SizeV66;

    /// <inheritdoc />
    public string Name => "vfio-pci";

    /// <inheritdoc />
    public bool PinsPages => false;

    /// <inheritdoc />
    public Errno OpenDevice(VfioDevice device)
    {
        if (device.Removed)
        {
            return Refusals.Refuse(Errno.ENODEV, "vfio_pci_core_enable", "{4} was unplugged", text: device.Name);
        }
        // vfio_pci_core_enable clears bus mastering first, so the state it saves never includes it (and a
        // failure of the steps after leaves it cleared). pci_enable_device: pci_enable_resources refuses a BAR
        // it cannot enable (EINVAL) before it writes the command register, else turns on memory decode for a
        // function with memory BARs.
        VfioPciDevice pci = State(device);
        ClearBusMaster(pci);
        if (device.Faults.ShouldFail(FaultSite.PciEnableDevice))
        {
            return Refusals.Refuse(Errno.EINVAL, "pci_enable_device", "enabling {4} failed (injected)", text: device.Name);
        }
        pci.Function.SetMemoryEnable(true);
        // pci_try_reset_function at enable decides reset_works: the function needs a reset method, and a slot or bus
        // reset must not reach another function (pci_dev_reset_slot_function's multifunction test,
        // pci_parent_bus_reset's "other devices on the bus").
        pci.ResetWorks = pci.Function.Description.Reset switch
        {
            PciResetMethod.None => false,
            PciResetMethod.Slot => _topology.FunctionsOnSlot(pci.Function.Address).Count == 1,
            PciResetMethod.Bus => _topology.FunctionsOnBus(pci.Function.Address).Count == 1,
            _ => true,
        };
        // vfio_config_init allocates the virtual config space (ENOMEM); the unwind's pci_disable_device
        // clears bus mastering only, so memory decode stays on, as in Linux.
        if (device.Faults.ShouldFail(FaultSite.VfioConfigInit))
        {
            return Refusals.Refuse(Errno.ENOMEM, "vfio_config_init", "allocating the virtual config space of {4} failed (injected)", text: device.Name);
        }
        pci.Config = new VfioPciConfig(pci);
        // The revocation of a forced release ends with a new open that succeeded.
        pci.ClearRevocation();
        return Errno.None;
    }

    /// <inheritdoc />
    public void CloseDevice(VfioDevice device)
    {
        // vfio_pci_core_close_device resets the function when it can (try_bus_reset / FLR), so a
        // later user finds the device clean; mmaps are gone with the fds that held them.
        // vfio_pci_core_disable stops the device's DMA (pci_clear_master) before the reset and the restore of
        // the state saved at open, which had bus mastering cleared too.
        VfioPciDevice pci = State(device);
        ClearBusMaster(pci);
        // vfio_pci_core_disable tears down the enabled interrupt index; close_device drops the error and request
        // triggers; vfio_config_free drops the virtual config space.
        pci.Irqs.Release();
        pci.Config = null;
        pci.LowPower = null;
        pci.ReleaseBarMaps();
        // A mapping holds its file, so one that outlives the last close belongs to a file a forced release
        // detached: it stays revoked, also after an open that failed past open_device (which cleared it).
        if (pci.Mapping.SnapshotVmas().Length > 0)
        {
            pci.Revoke();
        }
        ZapAndReset(pci);
    }

    private static void ClearBusMaster(VfioPciDevice pci)
    {
        PciCommand command = pci.Function.Command;
        if ((command & PciCommand.Master) != 0)
        {
            pci.Function.WriteCommand(command & ~PciCommand.Master);
        }
    }

    /// <inheritdoc />
    public long Ioctl(VfioCallContext context, VfioDevice device, uint request, ref IoctlArgument argument)
    {
        VfioPciDevice pci = State(device);
        return request switch
        {
            VfioIoctl.DeviceGetInfo => GetInfo(pci, Behavior.UnalignedInfoCaps, ref argument),
            VfioIoctl.DeviceGetRegionInfo => GetRegionInfo(pci, ref argument),
            VfioIoctl.DeviceGetIrqInfo => GetIrqInfo(pci, ref argument),
            VfioIoctl.DeviceSetIrqs => SetIrqs(context, pci, ref argument),
            VfioIoctl.DeviceFeature => Feature(context, pci, ref argument),
            VfioIoctl.DeviceReset => Reset(pci),
            VfioIoctl.DeviceGetPciHotResetInfo => GetHotResetInfo(pci, device.Faults, ref argument),
            VfioIoctl.DevicePciHotReset => HotReset(context, pci, device.Faults, ref argument),
            _ => Refusals.RefuseReturn(Errno.ENOTTY, "vfio_pci_core_ioctl", "request 0x{0:x} is not a vfio-pci device ioctl", request),
        };
    }

    /// <summary>The vfio-pci state of a device created by the host builder.</summary>
    public static VfioPciDevice State(VfioDevice device) => (VfioPciDevice)device.Hardware!;

    private static long GetInfo(VfioPciDevice pci, bool preV66Size, ref IoctlArgument arg) =>
        DeviceInfoReply.Answer(ref arg, DeviceInfoFlags.Pci | (pci.ResetWorks ? DeviceInfoFlags.Reset : 0), VfioPci.NumRegions, VfioPci.NumIrqs, preV66Size);

    private static long GetRegionInfo(VfioPciDevice pci, ref IoctlArgument arg)
    {
        Span<byte> buf = stackalloc byte[VfioRegionInfo.SizeOf];
        if (!arg.TryCopyFrom(0, buf))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_region_info", "copy_from_user of the {0}-byte struct vfio_region_info faulted", (ulong)buf.Length);
        }
        VfioRegionInfo.TryRead(buf, out VfioRegionInfo info);
        if (info.Argsz < VfioRegionInfo.MinSize)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_ioctl_get_region_info", "argsz {0} is below minsz {1}", info.Argsz, (ulong)VfioRegionInfo.MinSize);
        }
        if (!TryDescribeRegion(pci, info.Index, out ulong size, out RegionInfoFlags flags))
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_ioctl_get_region_info", "region index {0} is not one of the device's {1} regions", info.Index,
                (ulong)VfioPci.NumRegions);
        }
        info.Offset = VfioPci.IndexToOffset(info.Index);
        info.Size = size;
        info.Flags = flags;
        // The BAR holding the MSI-X table, when mmappable, carries VFIO_REGION_INFO_CAP_MSIX_MAPPABLE (a32295c612c5,
        // v4.16): the table may be mmapped although vfio-pci excludes it from read and write.
        if ((int)info.Index == pci.MsixBar && (flags & RegionInfoFlags.Mmap) != 0)
        {
            info.Flags |= RegionInfoFlags.Caps;
            int capSize = VfioInfoCapHeader.SizeOf;
            if (info.Argsz < VfioRegionInfo.SizeOf + capSize)
            {
                info.Argsz = (uint)(VfioRegionInfo.SizeOf + capSize);
                info.CapOffset = 0;
            }
            else
            {
                Span<byte> cap = stackalloc byte[VfioInfoCapHeader.SizeOf];
                new VfioInfoCapHeader { Id = (ushort)RegionInfoCapId.MsixMappable, Version = 1, Next = 0 }.Write(cap);
                if (!arg.TryCopyTo(VfioRegionInfo.SizeOf, cap))
                {
                    return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_region_info", "copy_to_user of the MSI-X mappable capability faulted");
                }
                info.CapOffset = VfioRegionInfo.SizeOf;
            }
        }
        else
        {
            info.CapOffset = 0;
        }
        info.Write(buf);
        return arg.TryCopyTo(0, buf) ? 0 : Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_region_info", "copy_to_user of struct vfio_region_info faulted");
    }

    /// <summary>Size and flags of region <paramref name="index"/>; false for VGA on a non-VGA device
    /// and for indexes past the last region (EINVAL).</summary>
    internal static bool TryDescribeRegion(VfioPciDevice pci, uint index, out ulong size, out RegionInfoFlags flags)
    {
        size = 0;
        flags = RegionInfoFlags.None;
        switch ((VfioPciRegionIndex)index)
        {
            case VfioPciRegionIndex.Config:
                size = (ulong)pci.Function.ConfigSize;
                flags = RegionInfoFlags.Read | RegionInfoFlags.Write;
                return true;
            case >= VfioPciRegionIndex.Bar0 and <= VfioPciRegionIndex.Bar5:
                PciBar? bar = pci.Function.Bar((int)index);
                if (bar is null || bar.Size == 0)
                {
                    return true;
                }
                size = bar.Size;
                flags = RegionInfoFlags.Read | RegionInfoFlags.Write;
                if (pci.BarMmapSupported((int)index))
                {
                    flags |= RegionInfoFlags.Mmap;
                }
                return true;
            case VfioPciRegionIndex.Rom:
                // The ROM BAR's size (not the image's), readable only when pci_map_rom finds an image; a function
                // without a ROM answers size 0 and no flags.
                size = pci.Function.Description.RomSize;
                flags = size != 0 ? RegionInfoFlags.Read : RegionInfoFlags.None;
                return true;
            default:
                return false;
        }
    }

    private static long Reset(VfioPciDevice pci)
    {
        if (!pci.ResetWorks)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_ioctl_reset", "the device has no reset method Linux can use (reset_works is false)");
        }
        ZapAndReset(pci);
        return 0;
    }

    // vfio_pci_zap_and_down_write_memory_lock, then pci_try_reset_function, which saves the config
    // state, disables decode, resets and restores the saved state.
    private static void ZapAndReset(VfioPciDevice pci)
    {
        pci.MemoryLock.EnterWriteLock();
        try
        {
            ResetLocked(pci);
        }
        finally
        {
            pci.MemoryLock.ExitWriteLock();
        }
    }

    /// <summary>The reset of <see cref="ZapAndReset"/> with memory_lock already held for write (the PCIe FLR bit
    /// written through config space).</summary>
    internal static void ResetLocked(VfioPciDevice pci)
    {
        System.Diagnostics.Debug.Assert(pci.MemoryLock.IsWriteLockHeld);
        pci.ZapBarsLocked();
        PciSavedState saved = pci.Function.SaveState();
        pci.Function.FunctionReset();
        pci.Function.RestoreState(saved);
    }
}
