using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Pci;

namespace VfioLab.Vfio.Pci;

// VFIO_DEVICE_GET_PCI_HOT_RESET_INFO and VFIO_DEVICE_PCI_HOT_RESET with group fds
// (vfio_pci_ioctl_get_pci_hot_reset_info, vfio_pci_ioctl_pci_hot_reset_groups and
// vfio_pci_dev_set_hot_reset in v6.18's vfio_pci_core.c). The model's slots all support a slot reset
// (pci_probe_reset_slot succeeds), so the scope is always the slot and the ENODEV of "neither a slot
// nor a bus reset" cannot arise; device fds opened through iommufd (cdev) are not modelled, so the
// zero-length group array is always EINVAL.
internal sealed partial class VfioPciDriver
{
    /// <summary>
    /// GET_PCI_HOT_RESET_INFO: the functions a reset of this device's slot reaches, each with its IOMMU
    /// group. EFAULT (copies), EINVAL (argsz below 12), ENOSPC with the needed <c>count</c> written back
    /// when the caller's array is too small, ENOMEM when the devices array cannot be allocated (fault site
    /// <c>hot_reset_info_alloc</c>), EPERM when a function has no IOMMU group.
    /// </summary>
    private long GetHotResetInfo(VfioPciDevice pci, FaultInjector faults, ref IoctlArgument arg)
    {
        Span<byte> header = stackalloc byte[VfioPciHotResetInfo.MinSize];
        if (!arg.TryCopyFrom(0, header))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_pci_hot_reset_info", "copy_from_user of the struct header faulted");
        }
        VfioPciHotResetInfo.TryRead(header, out VfioPciHotResetInfo hdr);
        if (hdr.Argsz < VfioPciHotResetInfo.MinSize)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_ioctl_get_pci_hot_reset_info", "argsz {0} is below minsz {1}", hdr.Argsz, (ulong)VfioPciHotResetInfo.MinSize);
        }
        hdr.Flags = 0;
        IReadOnlyList<PciFunction> scope = _topology.FunctionsOnSlot(pci.Function.Address);
        ulong room = (hdr.Argsz - (ulong)VfioPciHotResetInfo.SizeOf) / VfioPciDependentDevice.SizeOf;
        if ((ulong)scope.Count > room)
        {
            hdr.Count = (uint)scope.Count;
            hdr.Write(header);
            return arg.TryCopyTo(0, header) ? Refusals.RefuseReturn(Errno.ENOSPC, "vfio_pci_ioctl_get_pci_hot_reset_info", "argsz {0} has room for fewer than the {1} devices of the reset scope (count written back)", hdr.Argsz, (ulong)scope.Count) : Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_pci_hot_reset_info", "copy_to_user of the count faulted");
        }
        // kcalloc of the devices array: ENOMEM, nothing copied back.
        if (faults.ShouldFail(FaultSite.HotResetInfoAlloc))
        {
            return Refusals.RefuseReturn(Errno.ENOMEM, "vfio_pci_ioctl_get_pci_hot_reset_info", "allocating the devices array failed (injected)");
        }
        byte[] devices = new byte[scope.Count * VfioPciDependentDevice.SizeOf];
        for (int i = 0; i < scope.Count; i++)
        {
            PciAddress a = scope[i].Address;
            int? group = _iommuGroupOf(scope[i]);
            if (group is null)
            {
                // "Cannot reset non-isolated devices": nothing is copied back.
                return Refusals.RefuseReturn(Errno.EPERM, "vfio_pci_ioctl_get_pci_hot_reset_info", "a device of the reset scope is in no IOMMU group (cannot reset non-isolated devices)");
            }
            new VfioPciDependentDevice
            {
                GroupId = (uint)group.Value,
                Segment = (ushort)a.Domain,
                Bus = (byte)a.Bus,
                Devfn = (byte)((a.Device << 3) | a.Function),
            }.Write(devices.AsSpan(i * VfioPciDependentDevice.SizeOf));
        }
        if (!arg.TryCopyTo(VfioPciHotResetInfo.Offsets.Devices, devices))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_pci_hot_reset_info", "copy_to_user of the devices faulted");
        }
        hdr.Count = (uint)scope.Count;
        hdr.Write(header);
        return arg.TryCopyTo(0, header) ? 0 : Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_get_pci_hot_reset_info", "copy_to_user of the header faulted");
    }

    /// <summary>
    /// PCI_HOT_RESET with the group fds that prove ownership: EFAULT (copies), EINVAL (argsz, flags, no
    /// group fds, more fds than functions in the slot, an fd that is not a VFIO group, a function of the
    /// slot not bound to vfio-pci, a device of the dev_set whose group was not passed), EBADF (an fd that
    /// is not open), ENOMEM (the fd and file arrays cannot be allocated, fault site <c>hot_reset_alloc</c>:
    /// before anything is read or taken), EBUSY (a device's memory_lock is contended: nothing was reset and every lock taken is
    /// dropped again). On success every BAR mmap of every device in the slot was zapped under its
    /// memory_lock, and the slot was reset with each function's config state saved and restored around it.
    /// </summary>
    private long HotReset(VfioCallContext context, VfioPciDevice pci, FaultInjector faults, ref IoctlArgument arg)
    {
        Span<byte> header = stackalloc byte[VfioPciHotReset.MinSize];
        if (!arg.TryCopyFrom(0, header))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_pci_hot_reset", "copy_from_user of the struct header faulted");
        }
        VfioPciHotReset.TryRead(header, out VfioPciHotReset hdr);
        if (hdr.Argsz < VfioPciHotReset.MinSize || hdr.Flags != 0 || hdr.Count == 0)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_ioctl_pci_hot_reset", "argsz {0} (minsz {1}), flags 0x{2:x} (none allowed) or count {3} (at least 1)", hdr.Argsz, (ulong)VfioPciHotReset.MinSize, hdr.Flags, hdr.Count);
        }
        IReadOnlyList<PciFunction> scope = _topology.FunctionsOnSlot(pci.Function.Address);
        if (hdr.Count > (uint)scope.Count)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_ioctl_pci_hot_reset", "{0} group fds for a reset scope of {1} devices", hdr.Count, (ulong)scope.Count);
        }
        // kcalloc of the group fd and file arrays, before the fds are copied in.
        if (faults.ShouldFail(FaultSite.HotResetAlloc))
        {
            return Refusals.RefuseReturn(Errno.ENOMEM, "vfio_pci_ioctl_pci_hot_reset", "allocating the group arrays failed (injected)");
        }
        byte[] raw = new byte[hdr.Count * 4];
        if (!arg.TryCopyFrom(VfioPciHotReset.Offsets.GroupFds, raw))
        {
            return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_ioctl_pci_hot_reset", "copy_from_user of {0} group fds faulted", hdr.Count);
        }
        // fget every fd so the groups stay alive across the reset; all references go at the end.
        var files = new List<OpenFile>((int)hdr.Count);
        try
        {
            var groups = new List<VfioGroup>((int)hdr.Count);
            for (int i = 0; i < hdr.Count; i++)
            {
                int fd = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(i * 4));
                if (!context.Process.Fds.TryGet(fd, out OpenFile file))
                {
                    return Refusals.RefuseReturn(Errno.EBADF, "vfio_pci_ioctl_pci_hot_reset", "group fd {0} is not open", (ulong)(uint)fd);
                }
                files.Add(file);
                if (file.Operations is not VfioGroupFile groupFile)
                {
                    return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_ioctl_pci_hot_reset", "fd {0} is not a VFIO group", (ulong)(uint)fd);
                }
                groups.Add(groupFile.Group);
            }
            return DevSetHotReset(pci, scope, groups).AsReturn();
        }
        finally
        {
            foreach (OpenFile f in files)
            {
                f.Put();
            }
        }
    }

    // vfio_pci_dev_set_hot_reset: under the dev_set lock, every function of the slot must be one of our
    // devices; each device, in dev_set order, must be owned through the groups and its memory_lock taken
    // with a try-lock (contention unwinds); then BAR mmaps are zapped and the slot reset.
    private Errno DevSetHotReset(VfioPciDevice pci, IReadOnlyList<PciFunction> scope, List<VfioGroup> groups)
    {
        using (DevSetLock(pci.Function.Address).EnterScope())
        {
            List<VfioDevice> devSet = DevSet(pci.Function.Address);
            foreach (PciFunction f in scope)
            {
                if (!devSet.Exists(d => ReferenceEquals(State(d).Function, f)))
                {
                    return Refusals.Refuse(Errno.EINVAL, "vfio_pci_dev_set_hot_reset", "a function of the reset scope is not bound to vfio-pci in this dev_set");
                }
            }
            int locked = 0;
            Errno error = Errno.None;
            foreach (VfioDevice d in devSet)
            {
                if (!groups.Exists(g => ReferenceEquals(g, d.Group)))
                {
                    error = Refusals.Refuse(Errno.EINVAL, "vfio_pci_dev_set_hot_reset", "the group of {4} (in the reset scope) is not among the group fds given", text: d.Name);
                    break;
                }
                VfioPciDevice member = State(d);
                if (!member.MemoryLock.TryEnterWriteLock(0))
                {
                    error = Refusals.Refuse(Errno.EBUSY, "vfio_pci_dev_set_hot_reset", "the memory_lock of {4} is held", text: d.Name);
                    break;
                }
                locked++;
                member.ZapBarsLocked();
            }
            try
            {
                if (error == Errno.None)
                {
                    // pci_reset_bus on a slot: save and disable each function, reset them together, restore.
                    var saved = new PciSavedState[scope.Count];
                    for (int i = 0; i < scope.Count; i++)
                    {
                        saved[i] = scope[i].SaveState();
                    }
                    _topology.HotReset(pci.Function.Address, PciResetScope.Slot);
                    for (int i = 0; i < scope.Count; i++)
                    {
                        scope[i].RestoreState(saved[i]);
                    }
                }
            }
            finally
            {
                for (int i = locked - 1; i >= 0; i--)
                {
                    State(devSet[i]).MemoryLock.ExitWriteLock();
                }
            }
            return error;
        }
    }

    /// <summary>The vfio-pci devices on the slot of <paramref name="address"/>, in address order (the dev_set).</summary>
    internal List<VfioDevice> DevSet(PciAddress address)
    {
        lock (_gate)
        {
            List<VfioDevice> set = _devices.FindAll(d => State(d).Function.Address.SameSlot(address));
            set.Sort((a, b) => State(a).Function.Address.CompareTo(State(b).Function.Address));
            return set;
        }
    }

    private OrderedLock DevSetLock(PciAddress address)
    {
        lock (_gate)
        {
            if (!_devSetLocks.TryGetValue(address.Slot, out OrderedLock gate))
            {
                gate = new OrderedLock(LockRank.DevSet);
                _devSetLocks.Add(address.Slot, gate);
            }
            return gate;
        }
    }
}
