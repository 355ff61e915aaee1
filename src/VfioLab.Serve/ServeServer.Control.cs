using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Serve;

public sealed partial class ServeServer
{
    private Reply Control(ushort op, byte[] payload)
    {
        try
        {
            return op switch
            {
                Wire.CtlStatus => Text(0, Status()),
                Wire.CtlCheck => Check(),
                Wire.CtlSizing => Text(0, Sizing()),
                Wire.CtlDma => ControlDma(payload),
                Wire.CtlReset => ControlReset(CString(payload)),
                Wire.CtlUnplug => HostChange(CString(payload), d => d.Unplug(), "unplug"),
                Wire.CtlRecordSave => RecordSave(),
                _ => HostChange(CString(payload), d => d.Release(), "release"),
            };
        }
        catch (LabConfigurationException e)
        {
            return Text(Errno.ENODEV.AsReturn(), e.Message);
        }
    }

    private static Reply Text(long result, string text) => new(result, 0, Encoding.UTF8.GetBytes(text), "ctl");

    private string Status()
    {
        var b = new StringBuilder();
        foreach (LabProcess p in Host.Processes)
        {
            ClientProcess? client = _clients.Values.FirstOrDefault(c => c.Lab == p);
            b.Append(CultureInfo.InvariantCulture, $"process {p.Name}{(client is null ? "" : $" (real pid {client.Pid})")}: "
                + $"{(p.IsAlive ? "alive" : "exited")}, locked_vm {p.LockedVmBytes} bytes, memlock {(p.MemlockLimitBytes == LabHostBuilder.Unlimited ? "unlimited" : p.MemlockLimitBytes.ToString(CultureInfo.InvariantCulture))}\n");
        }
        foreach (LabContainer c in Host.Containers)
        {
            b.Append(CultureInfo.InvariantCulture, $"container: groups [{string.Join(", ", c.Groups)}], {c.Mappings.Count} mapping(s)\n");
            foreach (LabMapping m in c.Mappings)
            {
                b.Append(CultureInfo.InvariantCulture, $"  iova 0x{m.Iova:x} size 0x{m.Size:x} vaddr 0x{m.Vaddr:x}\n");
            }
        }
        foreach (LabDevice d in Host.Devices)
        {
            b.Append(CultureInfo.InvariantCulture, $"device {d.Name} {d.Address} group {d.IommuGroup}: {(d.IsPresent ? "present" : "unplugged")}, {d.IommuEntries} IOMMU entries, {d.ResetCount} reset(s)\n");
        }
        b.Append(CultureInfo.InvariantCulture, $"pinned pages {Host.PinnedPages}; connections {_connections.Count}; violations so far {_violations.Count}\n");
        return b.ToString().Replace("\\\n", "\n", StringComparison.Ordinal);
    }

    private Reply Check()
    {
        IReadOnlyList<LabViolation> found = Host.CheckInvariants();
        var b = new StringBuilder();
        foreach (LabViolation v in found)
        {
            b.Append(v).Append('\n');
        }
        b.Append(found.Count == 0 ? "invariants: no violation\n" : $"invariants: {found.Count} violation(s)\n");
        return Text(found.Count, b.ToString());
    }

    private string Sizing()
    {
        var b = new StringBuilder();
        foreach (LabProcess p in Host.Processes.Where(p => p.IsAlive))
        {
            b.Append(CultureInfo.InvariantCulture, $"process {p.Name}: locked_vm {p.LockedVmBytes} bytes\n");
        }
        foreach (LabContainer c in Host.Containers)
        {
            ulong bytes = c.Mappings.Aggregate(0UL, (sum, m) => sum + m.Size);
            b.Append(CultureInfo.InvariantCulture, $"container groups [{string.Join(", ", c.Groups)}]: {c.Mappings.Count} DMA mapping(s), {bytes} bytes mapped\n");
        }
        foreach (LabDevice d in Host.Devices)
        {
            if (d.Domain is { } dom)
            {
                b.Append(CultureInfo.InvariantCulture, $"device {d.Name}: {dom.Entries} IOPTEs, {dom.PageTablePages} page-table page(s)\n");
            }
        }
        b.Append(CultureInfo.InvariantCulture, $"pinned pages {Host.PinnedPages}\n");
        return b.ToString();
    }

    // u32 write, u32 name_length, u64 iova, u64 size, name[name_length], then a write's bytes.
    private Reply ControlDma(byte[] p)
    {
        if (p.Length < 24)
        {
            return Text(Wire.EProto, "CTL_DMA: payload too short");
        }
        bool write = BinaryPrimitives.ReadUInt32LittleEndian(p) != 0;
        int nameLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(p.AsSpan(4));
        ulong iova = BinaryPrimitives.ReadUInt64LittleEndian(p.AsSpan(8));
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(p.AsSpan(16));
        if (nameLength < 0 || 24 + nameLength > p.Length || size > Wire.MaxPayload || (write && (ulong)(p.Length - 24 - nameLength) != size))
        {
            return Text(Wire.EProto, "CTL_DMA: malformed payload");
        }
        string device = Encoding.UTF8.GetString(p, 24, nameLength);
        ServeDmaResult r = write ? DeviceWriteLocked(device, iova, p.AsSpan(24 + nameLength)) : DeviceReadLocked(device, iova, size);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{(write ? "write" : "read")} {device} iova 0x{iova:x} size {size}: ");
        text.Append(r.Model.Ok ? $"ok, {r.RealBytes} byte(s) in a client's memory\n" : $"fault at 0x{r.Model.FaultIova:x} ({r.Model.FaultReason})\n");
        foreach (string note in r.ModelOnly)
        {
            text.Append("  model only: ").Append(note).Append('\n');
        }
        byte[] message = Encoding.UTF8.GetBytes(text.ToString());
        // Reply: u32 data_length, data, then the text.
        byte[] reply = new byte[4 + r.Data.Length + message.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, (uint)r.Data.Length);
        r.Data.CopyTo(reply, 4);
        message.CopyTo(reply, 4 + r.Data.Length);
        return new Reply(r.Model.Ok ? 0 : Errno.EFAULT.AsReturn(), 0, reply, "ctl dma");
    }

    // VFIO_DEVICE_RESET as the first client holding the device's file issues it.
    private Reply ControlReset(string device)
    {
        LabDevice d = Host.Device(device);
        ModelFile? file = _connections.Select(c => c.File).FirstOrDefault(f => f is { Kind: FileKind.Device } && f.Path == d.Address && f.Holders.Count > 0);
        if (file is null)
        {
            return Text(Errno.ENODEV.AsReturn(), $"no client has {device} open; VFIO_DEVICE_RESET needs its file");
        }
        ClientProcess holder = file.Holders.First();
        long r = holder.Lab.Syscalls.Ioctl(file.Fd, VfioIoctl.DeviceReset, 0);
        _recorder?.DeviceReset(holder, file, r);
        return Text(r, $"VFIO_DEVICE_RESET of {device} as {holder}: {(r >= 0 ? "ok" : ErrnoExtensions.FromReturn(r).ToString())}\n");
    }

    // The gate is held (every call is served under it): the recording is written as it stands.
    private Reply RecordSave()
    {
        if (_recorder is null)
        {
            return Text(Errno.EINVAL.AsReturn(), "the server is not recording (start it with vfiolab serve --record FILE)\n");
        }
        try
        {
            _recorder.Save();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Text(Errno.EIO.AsReturn(), $"{_recorder.Path} could not be written: {e.Message}\n");
        }
        return Text(0, string.Create(CultureInfo.InvariantCulture, $"recorded {_recorder.StepCount} step(s) to {_recorder.Path}\n"));
    }

    private Reply HostChange(string device, Func<LabDevice, int> action, string what)
    {
        LabDevice d = Host.Device(device);
        int r = action(d);
        _recorder?.HostChange(d, what == "unplug" ? "unplug" : "device_release", r);
        PathTree.Write(RootPath, Host);
        return Text(r, $"{what} of {device}: {(r >= 0 ? "ok" : ErrnoExtensions.FromReturn(r).ToString())}\n");
    }
}
