using System.Buffers.Binary;
using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>
/// A VFIO device fd seen from user space: device and region info, region access through pread/pwrite and mmap,
/// reset, and vfio-pci's command-register write and slot hot reset.
/// </summary>
public sealed class Device : VfioFile
{
    /// <summary>Offset of the PCI command register in config space.</summary>
    private const int PciCommand = 0x04;

    /// <summary>The command register's memory-space-enable bit.</summary>
    private const ushort PciCommandMemory = 0x2;

    internal Device(ISyscallSurface sys, string name, int fd)
        : base(sys, fd)
    {
        Name = name;
    }

    /// <summary>The device's name (PCI address or mdev UUID).</summary>
    public string Name { get; }

    /// <summary><c>VFIO_DEVICE_GET_INFO</c>.</summary>
    public DeviceInfo GetInfo()
    {
        byte[] reply = InfoQuery.Run(Sys, Fd, VfioIoctl.DeviceGetInfo, VfioDeviceInfo.SizeOf, null, () => $"device_get_info {Name} fd {Fd}");
        VfioDeviceInfo.TryRead(reply, out VfioDeviceInfo info);
        return new DeviceInfo(info.Flags, info.NumRegions, info.NumIrqs);
    }

    /// <summary><c>VFIO_DEVICE_GET_REGION_INFO</c> of region <paramref name="index"/>, with the SPARSE_MMAP capability
    /// decoded (<see cref="VfioRegionInfoReply"/>).</summary>
    /// <exception cref="VfioException">The call failed, or the reply cannot be trusted (<see cref="VfioException.Errno"/> None).</exception>
    public RegionInfo GetRegionInfo(uint index)
    {
        string Op() => $"device_get_region_info {Name} fd {Fd} index {index}";
        byte[] buffer = InfoQuery.Run(Sys, Fd, VfioIoctl.DeviceGetRegionInfo, VfioRegionInfo.SizeOf,
            b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(VfioRegionInfo.Offsets.Index), index), Op);
        var reply = VfioRegionInfoReply.Decode(buffer);
        if (reply.Error is { } error)
        {
            throw new VfioException(Op(), Errno.None, error);
        }
        List<SparseMmapArea>? areas = reply.SparseMmapAreas is { } sparse ? [.. sparse.Select(a => new SparseMmapArea(a.Offset, a.Size))] : null;
        VfioRegionInfo info = reply.Info;
        return new RegionInfo(info.Index, info.Flags, info.Size, info.Offset, areas);
    }

    /// <summary><c>VFIO_DEVICE_GET_IRQ_INFO</c> of interrupt index <paramref name="index"/>.</summary>
    /// <exception cref="VfioException">The call failed: EINVAL for an index the device lacks (vfio-pci's ERR on conventional
    /// PCI, any index past REQ).</exception>
    public IrqInfo GetIrqInfo(uint index)
    {
        byte[] arg = new byte[VfioIrqInfo.SizeOf];
        new VfioIrqInfo { Argsz = VfioIrqInfo.SizeOf, Index = index }.Write(arg);
        Syscall.Ioctl(Sys, Fd, VfioIoctl.DeviceGetIrqInfo, arg, () => $"device_get_irq_info {Name} fd {Fd} index {index}");
        VfioIrqInfo.TryRead(arg, out VfioIrqInfo info);
        return new IrqInfo(info.Index, info.Flags, info.Count);
    }

    /// <summary><c>VFIO_DEVICE_SET_IRQS</c> with DATA_EVENTFD and ACTION_TRIGGER: vectors <paramref name="start"/> onwards of
    /// <paramref name="index"/> signal <paramref name="eventFds"/> (-1 tears a vector down), enabling the index first if
    /// nothing is enabled.</summary>
    /// <exception cref="VfioException">The call failed (EINVAL, EBADF, ENOTTY, ... as Linux answers).</exception>
    public void SetIrqEventFds(uint index, uint start, ReadOnlySpan<int> eventFds)
    {
        byte[] arg = new byte[VfioIrqSet.SizeOf + (4 * eventFds.Length)];
        new VfioIrqSet
        {
            Argsz = (uint)arg.Length,
            Flags = IrqSetFlags.DataEventfd | IrqSetFlags.ActionTrigger,
            Index = index,
            Start = start,
            Count = (uint)eventFds.Length,
        }.Write(arg);
        for (int i = 0; i < eventFds.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(arg.AsSpan(VfioIrqSet.Offsets.Data + (4 * i)), eventFds[i]);
        }
        int count = eventFds.Length;
        Syscall.Ioctl(Sys, Fd, VfioIoctl.DeviceSetIrqs, arg, () => $"set_irqs {Name} fd {Fd} index {index} start {start} count {count}");
    }

    /// <summary><c>VFIO_DEVICE_SET_IRQS</c> with DATA_NONE and ACTION_TRIGGER, count 0: disables index <paramref name="index"/>.</summary>
    /// <exception cref="VfioException">The call failed (EINVAL when another index is enabled or the device lacks this one).</exception>
    public void DisableIrqs(uint index)
    {
        byte[] arg = new byte[VfioIrqSet.SizeOf];
        new VfioIrqSet { Argsz = VfioIrqSet.SizeOf, Flags = IrqSetFlags.DataNone | IrqSetFlags.ActionTrigger, Index = index }.Write(arg);
        Syscall.Ioctl(Sys, Fd, VfioIoctl.DeviceSetIrqs, arg, () => $"set_irqs {Name} fd {Fd} index {index} disable");
    }

    /// <summary><c>VFIO_DEVICE_RESET</c>.</summary>
    public void Reset() => Syscall.Ioctl(Sys, Fd, VfioIoctl.DeviceReset, 0, () => $"device_reset {Name} fd {Fd}");

    /// <summary>mmap of <paramref name="size"/> bytes of region <paramref name="index"/> from <paramref name="offset"/>
    /// (shared, as a BAR mapping must be). Returns the address.</summary>
    public ulong MapRegion(uint index, ulong offset, ulong size, MemoryProtection protection = MemoryProtection.Read | MemoryProtection.Write)
    {
        RegionInfo region = GetRegionInfo(index);
        ulong fileOffset = region.Offset + offset;
        return (ulong)Syscall.Check(Sys.Mmap(0, size, protection, MmapFlags.Shared, Fd, fileOffset),
            () => $"mmap {Name} fd {Fd} region {index} offset 0x{offset:x} size 0x{size:x}");
    }

    /// <summary>pread of region <paramref name="index"/> at <paramref name="offset"/>. Returns the bytes read.</summary>
    public int ReadRegion(uint index, ulong offset, Span<byte> destination)
    {
        RegionInfo region = GetRegionInfo(index);
        int length = destination.Length;
        return (int)Syscall.Check(Sys.Pread(Fd, destination, region.Offset + offset),
            () => $"pread {Name} fd {Fd} region {index} offset 0x{offset:x} length 0x{length:x}");
    }

    /// <summary>pwrite of region <paramref name="index"/> at <paramref name="offset"/>. Returns the bytes written.</summary>
    public int WriteRegion(uint index, ulong offset, ReadOnlySpan<byte> source)
    {
        RegionInfo region = GetRegionInfo(index);
        int length = source.Length;
        return (int)Syscall.Check(Sys.Pwrite(Fd, source, region.Offset + offset),
            () => $"pwrite {Name} fd {Fd} region {index} offset 0x{offset:x} length 0x{length:x}");
    }

    /// <summary>Sets or clears the PCI command register's memory-enable bit (read-modify-write of config space).</summary>
    public void SetMemoryEnable(bool enable)
    {
        Span<byte> command = stackalloc byte[2];
        ReadRegion((uint)VfioPciRegionIndex.Config, PciCommand, command);
        ushort value = BinaryPrimitives.ReadUInt16LittleEndian(command);
        value = enable ? (ushort)(value | PciCommandMemory) : (ushort)(value & ~PciCommandMemory);
        BinaryPrimitives.WriteUInt16LittleEndian(command, value);
        WriteRegion((uint)VfioPciRegionIndex.Config, PciCommand, command);
    }

    /// <summary><c>VFIO_DEVICE_GET_PCI_HOT_RESET_INFO</c>: the devices a slot or bus reset would also reset (first
    /// call learns the count through ENOSPC, second fetches them).</summary>
    public IReadOnlyList<HotResetDevice> GetHotResetInfo()
    {
        string Op() => $"get_pci_hot_reset_info {Name} fd {Fd}";
        byte[] probe = AbiStruct.ToArray(new VfioPciHotResetInfo { Argsz = VfioPciHotResetInfo.SizeOf });
        long rc = Sys.Ioctl(Fd, VfioIoctl.DeviceGetPciHotResetInfo, probe);
        if (rc < 0 && ErrnoExtensions.FromReturn(rc) != Errno.ENOSPC)
        {
            Syscall.Check(rc, Op);
        }
        VfioPciHotResetInfo.TryRead(probe, out VfioPciHotResetInfo head);
        if (!VfioPciHotResetInfoReply.TryGetReplySize(head.Count, out int size))
        {
            throw new VfioException(Op(), Errno.None, $"implausible device count {head.Count}");
        }
        byte[] arg = new byte[size];
        new VfioPciHotResetInfo { Argsz = (uint)size }.Write(arg);
        Syscall.Ioctl(Sys, Fd, VfioIoctl.DeviceGetPciHotResetInfo, arg, Op);
        var reply = VfioPciHotResetInfoReply.Decode(arg);
        if (reply.Error is { } error)
        {
            throw new VfioException(Op(), Errno.None, error);
        }
        return [.. reply.Devices.Select(d => new HotResetDevice(d.GroupId, d.Segment, d.Bus, d.Devfn))];
    }

    /// <summary><c>VFIO_DEVICE_PCI_HOT_RESET</c>, proving ownership of the affected groups with <paramref name="groups"/>.</summary>
    public void PciHotReset(IReadOnlyList<Group> groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        byte[] arg = new byte[VfioPciHotReset.SizeFor(groups.Count)];
        new VfioPciHotReset { Argsz = (uint)arg.Length }.Write(arg);
        VfioPciHotReset.WriteGroupFds(arg, [.. groups.Select(g => g.Fd)]);
        Syscall.Ioctl(Sys, Fd, VfioIoctl.DevicePciHotReset, arg,
            () => $"pci_hot_reset {Name} fd {Fd} groups [{string.Join(", ", groups.Select(g => g.Number))}]");
    }
}
