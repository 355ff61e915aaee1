using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Scenarios.Conformance;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>vfio-pci steps beyond the plain device ioctls: the slot hot reset.</summary>
internal sealed partial class ScenarioSession
{
    /// <summary>
    /// <c>pci_hot_reset: { fd, groups: [fd, ...] }</c>: VFIO_DEVICE_PCI_HOT_RESET with the given group fds.
    /// Without <c>groups</c> the step does what QEMU does: VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, then the
    /// process's open fds of the groups it lists (an errno of the info call is the step's result; a group
    /// the process has not opened is left out, so the reset answers EINVAL). Returns <c>result</c>,
    /// <c>bytes</c> and, when the info call ran, <c>devices</c> (functions the reset reaches).
    /// </summary>
    private StepResult PciHotReset(ScenarioStep step)
    {
        LabProcess p = ProcessOf(step);
        List<int> groupFds = [];
        ulong? devices = null;
        if (step.Has("groups"))
        {
            foreach (ScenarioValue v in step.Args.GetValues("groups"))
            {
                ulong fd = Resolve(v);
                if (fd > int.MaxValue)
                {
                    throw new StepFailure(step.Args.GetLocation("groups"), $"group fd 0x{fd:x} is not a file descriptor");
                }
                groupFds.Add((int)fd);
            }
        }
        else if (_real is not null)
        {
            throw new StepFailure(step.Location, "pci_hot_reset on a real kernel needs groups: the fds of the groups to reset");
        }
        else
        {
            long info = HotResetGroupsOf(step, p, Fd(step), groupFds, out ulong count);
            if (info < 0)
            {
                return Syscall(info);
            }
            devices = count;
        }
        StepResult r = StructIoctl(step, VfioIoctl.DevicePciHotReset, VfioPciHotReset.SizeOf, b => VfioPciHotReset.WriteGroupFds(b, [.. groupFds]),
            null, VfioPciHotReset.SizeFor(groupFds.Count) - VfioPciHotReset.SizeOf);
        if (devices is { } n)
        {
            r.Set("devices", n);
        }
        return r;
    }

    // GET_PCI_HOT_RESET_INFO (sized by a first call answering ENOSPC, read by the Abi's codec as the typed client
    // reads it), then the caller's fds of the listed groups, in fd order.
    private static long HotResetGroupsOf(ScenarioStep step, LabProcess p, int deviceFd, List<int> groupFds, out ulong count)
    {
        count = 0;
        byte[] probe = AbiStruct.ToArray(new VfioPciHotResetInfo { Argsz = VfioPciHotResetInfo.SizeOf });
        long ret = p.Syscalls.Ioctl(deviceFd, VfioIoctl.DeviceGetPciHotResetInfo, probe);
        if (ret < 0 && ErrnoExtensions.FromReturn(ret) != Errno.ENOSPC)
        {
            return ret;
        }
        VfioPciHotResetInfo.TryRead(probe, out VfioPciHotResetInfo head);
        if (!VfioPciHotResetInfoReply.TryGetReplySize(head.Count, out int size))
        {
            throw new StepFailure(step.Location, $"GET_PCI_HOT_RESET_INFO answered an implausible device count {head.Count}");
        }
        byte[] full = new byte[size];
        new VfioPciHotResetInfo { Argsz = (uint)size }.Write(full);
        ret = p.Syscalls.Ioctl(deviceFd, VfioIoctl.DeviceGetPciHotResetInfo, full);
        if (ret < 0)
        {
            return ret;
        }
        var reply = VfioPciHotResetInfoReply.Decode(full);
        count = reply.Info.Count;
        var wanted = new HashSet<uint>(reply.Devices.Select(d => d.GroupId));
        foreach ((int fd, int group) in p.GroupFds())
        {
            if (wanted.Remove((uint)group))
            {
                groupFds.Add(fd);
            }
        }
        return 0;
    }
}

/// <summary>vfio-pci regions read and written through the device fd, interrupts and device features.</summary>
internal sealed partial class ScenarioSession
{
    /// <summary>Largest region access a step may make.</summary>
    private const ulong MaxRegionAccess = 1UL << 20;

    /// <summary><c>region_read: { fd, index, offset, size }</c>: pread of the device fd at the region's offset
    /// (<c>VFIO_PCI_INDEX_TO_OFFSET(index) + offset</c>). Returns <c>result</c> (bytes read or -errno) and <c>data</c>.</summary>
    private StepResult RegionRead(ScenarioStep step)
    {
        ulong size = Value(step, "size");
        if (size > MaxRegionAccess)
        {
            throw new StepFailure(step.Args.GetLocation("size"), $"a region read of 0x{size:x} bytes is larger than the 1 MiB a step may read");
        }
        byte[] data = new byte[size];
        long ret = SyscallsOf(ProcessOf(step)).Pread(Fd(step), data, RegionOffset(step));
        StepResult r = Syscall(ret);
        if (ret >= 0)
        {
            r.Set("data", ResultValue.FromBytes(data.AsSpan(0, (int)ret).ToArray()));
        }
        return r;
    }

    /// <summary><c>region_write: { fd, index, offset, data }</c>: pwrite of the device fd. Returns <c>result</c>.</summary>
    private StepResult RegionWrite(ScenarioStep step) =>
        Syscall(SyscallsOf(ProcessOf(step)).Pwrite(Fd(step), step.Args.GetBytes("data"), RegionOffset(step)));

    private ulong RegionOffset(ScenarioStep step)
    {
        ulong index = Value(step, "index");
        ulong offset = ValueOr(step, "offset", 0);
        if (index > uint.MaxValue || offset > VfioPci.OffsetMask)
        {
            throw new StepFailure(step.Location, $"region {index} offset 0x{offset:x} does not fit a device-fd offset (index below 2^32, offset below 2^40)");
        }
        return VfioPci.IndexToOffset((uint)index) + offset;
    }

    /// <summary><c>device_get_irq_info: { fd, index }</c>: VFIO_DEVICE_GET_IRQ_INFO. Returns <c>flags</c> (their names),
    /// <c>count</c>, <c>index</c>, <c>argsz</c>, and <c>eventfd</c>, <c>maskable</c>, <c>automasked</c>, <c>noresize</c>.</summary>
    private StepResult DeviceGetIrqInfo(ScenarioStep step)
    {
        uint index = U32(step, "index");
        return StructIoctl(step, VfioIoctl.DeviceGetIrqInfo, VfioIrqInfo.SizeOf,
            b => new VfioIrqInfo { Index = index }.Write(b),
            (b, r) =>
            {
                VfioIrqInfo.TryRead(b, out VfioIrqInfo i);
                r.Set("argsz", (ulong)i.Argsz);
                r.Set("flags", ResultValue.FromFlags(i.Flags));
                r.Set("index", (ulong)i.Index);
                r.Set("count", (ulong)i.Count);
                r.Set("eventfd", (i.Flags & IrqInfoFlags.Eventfd) != 0);
                r.Set("maskable", (i.Flags & IrqInfoFlags.Maskable) != 0);
                r.Set("automasked", (i.Flags & IrqInfoFlags.Automasked) != 0);
                r.Set("noresize", (i.Flags & IrqInfoFlags.Noresize) != 0);
            });
    }

    /// <summary><c>set_irqs: { fd, index, start, count, flags, eventfds | data }</c>: VFIO_DEVICE_SET_IRQS with the
    /// struct and its data: <c>eventfds</c> (one s32 per vector; a value of 0xffffffff is -1, teardown) or raw
    /// <c>data</c> bytes. <c>count</c> defaults to the number of eventfds (else 0). Returns <c>result</c> and <c>bytes</c>.</summary>
    private StepResult SetIrqs(ScenarioStep step)
    {
        ulong index = Value(step, "index");
        ulong start = ValueOr(step, "start", 0);
        byte[] data;
        if (step.Has("eventfds"))
        {
            IReadOnlyList<ScenarioValue> fds = step.Args.GetValues("eventfds");
            data = new byte[fds.Count * 4];
            for (int i = 0; i < fds.Count; i++)
            {
                ulong fd = Resolve(fds[i]);
                if (fd > uint.MaxValue)
                {
                    throw new StepFailure(step.Args.GetLocation("eventfds"), $"eventfd 0x{fd:x} does not fit an s32");
                }
                BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(i * 4), (uint)fd);
            }
        }
        else
        {
            data = step.Has("data") ? step.Args.GetBytes("data") : [];
        }
        ulong count = step.Has("count") ? Value(step, "count") : step.Has("eventfds") ? (ulong)(data.Length / 4) : 0;
        if (index > uint.MaxValue || start > uint.MaxValue || count > uint.MaxValue)
        {
            throw new StepFailure(step.Location, $"index {index}, start {start} and count {count} must each fit a u32");
        }
        IrqSetFlags flags = IrqSetFlags.None;
        foreach (string name in step.Args.GetNames("flags"))
        {
            flags |= AbiNames.TryParse(name, out IrqSetFlags one) ? one : throw new StepFailure(step.Args.GetLocation("flags"), $"unknown flag '{name}'");
        }
        StepResult result = StructIoctl(step, VfioIoctl.DeviceSetIrqs, VfioIrqSet.SizeOf, b =>
        {
            new VfioIrqSet { Flags = flags, Index = (uint)index, Start = (uint)start, Count = (uint)count }.Write(b);
            data.CopyTo(b.AsSpan(VfioIrqSet.Offsets.Data));
        }, null, data.Length);
        bool trigger = (flags & IrqSetFlags.ActionTrigger) != 0;
        bool teardown = (flags & IrqSetFlags.DataNone) != 0 && count == 0;
        if (_real?.IsFirst(step.Process) == true && !result.TryGet("errno", out _) && trigger && ((flags & IrqSetFlags.DataEventfd) != 0 || teardown))
        {
            int n = teardown ? 0 : (int)Math.Min(count, (ulong)(data.Length / 4));
            var fds = new int[n];
            for (int i = 0; i < n; i++)
            {
                fds[i] = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(i * 4));
            }
            _real.TriggersSet(Fd(step), (uint)index, (uint)start, (uint)count, fds);
        }
        return result;
    }

    /// <summary><c>device_feature: { fd, feature, flags: [GET, SET, PROBE], data }</c>: VFIO_DEVICE_FEATURE with
    /// <c>struct vfio_device_feature</c> (argsz, flags = feature | op bits) and the payload bytes. Returns <c>result</c>
    /// and <c>bytes</c>.</summary>
    private StepResult DeviceFeature(ScenarioStep step)
    {
        ulong feature = Value(step, "feature");
        if (feature > 0xffff)
        {
            throw new StepFailure(step.Args.GetLocation("feature"), $"feature {feature} does not fit VFIO_DEVICE_FEATURE_MASK (16 bits)");
        }
        uint flags = (uint)feature;
        foreach (string name in step.Args.GetNames("flags"))
        {
            flags |= name switch
            {
                "GET" => 1u << 16,
                "SET" => 1u << 17,
                _ => 1u << 18,
            };
        }
        byte[] data = step.Has("data") ? step.Args.GetBytes("data") : [];
        return StructIoctl(step, VfioIoctl.DeviceFeature, 8, b =>
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), flags);
            data.CopyTo(b.AsSpan(8));
        }, null, data.Length);
    }

    /// <summary><c>eventfd: { as }</c>: eventfd(2), non-blocking, in the process. Returns the fd.</summary>
    private StepResult EventFdCreate(ScenarioStep step)
    {
        return NewFd(_real is not null ? (int)_real.Kernel.CreateEventFd() : ProcessOf(step).CreateEventFd());
    }

    /// <summary><c>eventfd_read: { fd }</c>: a non-blocking read of the eventfd: <c>count</c>, the signals since the
    /// last read (cleared); EAGAIN when there were none.</summary>
    private StepResult EventFdRead(ScenarioStep step)
    {
        long ret = _real is not null ? _real.Kernel.ReadEventFd(Fd(step)) : ProcessOf(step).ReadEventFd(Fd(step));
        StepResult r = Syscall(ret);
        if (ret >= 0)
        {
            r.Set("count", (ulong)ret);
        }
        return r;
    }

    /// <summary><c>device_interrupt: { device, index: intx|msi|msix|err|req, vector }</c>: the device asserts an
    /// interrupt. Returns <c>delivered</c>: whether a trigger eventfd the user set was signalled.</summary>
    private StepResult DeviceInterrupt(ScenarioStep step)
    {
        if (_real is not null)
        {
            return RealDeviceInterrupt(step);
        }
        LabDevice device = DeviceOf(step.Args);
        LabIrqIndex index = step.Args.GetString("index") switch
        {
            "intx" => LabIrqIndex.Intx,
            "msi" => LabIrqIndex.Msi,
            "msix" => LabIrqIndex.Msix,
            "err" => LabIrqIndex.Err,
            _ => LabIrqIndex.Req,
        };
        ulong vector = ValueOr(step, "vector", 0);
        if (vector > int.MaxValue)
        {
            throw new StepFailure(step.Args.GetLocation("vector"), $"vector {vector} is out of range");
        }
        if (device.IsMediated || !device.IsVfioBound)
        {
            throw new StepFailure(step.Args.GetLocation("device"), $"device {device.Name} is not bound to vfio-pci; its interrupts do not reach VFIO");
        }
        bool delivered = device.RaiseInterrupt(index, (int)vector);
        StepResult r = Syscall(0);
        r.Set("delivered", delivered);
        return r;
    }
    /// <summary><c>device_interrupt</c> on a real kernel: the device behind the scenario device's open fd raises the
    /// interrupt, and <c>delivered</c> is whether the trigger eventfd VFIO holds for it was signalled (waited on, not
    /// read, so a later <c>eventfd_read</c> sees the count).</summary>
    private StepResult RealDeviceInterrupt(ScenarioStep step)
    {
        string name = step.Args.GetString("device");
        int fd = _real!.DeviceFdOf(name) ?? throw new StepFailure(step.Args.GetLocation("device"),
            $"no open device fd of {name}: a real device's interrupt is raised through one (get_device_fd first)");
        string index = step.Args.GetString("index");
        uint number = index switch
        {
            "intx" => 0,
            "msi" => 1,
            "msix" => 2,
            "err" => 3,
            _ => 4,
        };
        ulong vector = ValueOr(step, "vector", 0);
        if (vector > int.MaxValue)
        {
            throw new StepFailure(step.Args.GetLocation("vector"), $"vector {vector} is out of range");
        }
        RealInterrupt raised = _real.Kernel.RaiseInterrupt(name, fd, index, (int)vector, _real.TriggerOf(name, number, (uint)vector));
        if (raised.CannotReason is { } reason)
        {
            throw new RealStepUnavailable(reason);
        }
        StepResult r = Syscall(0);
        r.Set("delivered", raised.Delivered);
        return r;
    }
}
