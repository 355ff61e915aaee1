using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

internal sealed partial class ScenarioSession
{
    /// <summary>Largest ioctl buffer a step may pass.</summary>
    private const ulong MaxIoctlBuffer = 1UL << 20;

    private StepResult Open(ScenarioStep step)
    {
        string path = step.Args.GetString("path");
        return NewFd(SyscallsOf(ProcessOf(step)).Open(_real is null ? path : _real.PathOf(path)));
    }

    private StepResult Close(ScenarioStep step)
    {
        int fd = Fd(step);
        if (_real?.IsFirst(step.Process) == true)
        {
            _real.Closed(fd);
        }
        return Syscall(SyscallsOf(ProcessOf(step)).Close(fd));
    }

    private StepResult ValueIoctl(ScenarioStep step, uint request, ulong value) =>
        Syscall(SyscallsOf(ProcessOf(step)).Ioctl(Fd(step), request, value));

    private ulong Extension(ScenarioStep step, string field)
    {
        ScenarioSymbol sym = step.Args.GetSymbol(field);
        if (!sym.IsName)
        {
            return sym.Number;
        }
        return VfioExtension.TryParse(sym.Name!, out uint id)
            ? id
            : throw new StepFailure(sym.Location, $"unknown extension '{sym.Name}'");
    }

    /// <summary>Runs a struct ioctl the way a client does: the struct with <c>argsz</c> (default: its
    /// size) in a buffer of <c>buffer</c> bytes (default: the larger of the two), then reports the
    /// return value, the decoded output and the whole buffer as <c>bytes</c>.</summary>
    private StepResult StructIoctl(ScenarioStep step, uint request, int structSize, Action<byte[]> fill, Action<byte[], StepResult>? decode,
        int extraBytes = 0)
    {
        LabProcess p = ProcessOf(step);
        int fd = Fd(step);
        ulong argsz = step.Has("argsz") ? U32(step, "argsz") : (ulong)(structSize + extraBytes);
        ulong length = step.Has("buffer") ? Value(step, "buffer") : Math.Max((ulong)(structSize + extraBytes), argsz);
        if (length > MaxIoctlBuffer)
        {
            throw new StepFailure(step.Location, $"an ioctl buffer of 0x{length:x} bytes is larger than the 1 MiB a step may pass");
        }
        byte[] full = new byte[Math.Max(length, (ulong)(structSize + extraBytes))];
        fill(full);
        BinaryPrimitives.WriteUInt32LittleEndian(full, (uint)argsz);
        byte[] buffer = full[..(int)length];
        long ret = SyscallsOf(p).Ioctl(fd, request, buffer);
        StepResult r = Syscall(ret);
        r.Set("bytes", ResultValue.FromBytes(buffer));
        if (ret >= 0 && decode is not null)
        {
            Array.Copy(buffer, full, buffer.Length);
            decode(full, r);
        }
        return r;
    }

    private StepResult GroupGetStatus(ScenarioStep step) =>
        StructIoctl(step, VfioIoctl.GroupGetStatus, VfioGroupStatus.SizeOf, _ => { }, (b, r) =>
        {
            VfioGroupStatus.TryRead(b, out VfioGroupStatus s);
            r.Set("flags", ResultValue.FromFlags(s.Flags));
            r.Set("viable", (s.Flags & GroupStatusFlags.Viable) != 0);
            r.Set("container_set", (s.Flags & GroupStatusFlags.ContainerSet) != 0);
            r.Set("argsz", (ulong)s.Argsz);
        });

    private StepResult GroupSetContainer(ScenarioStep step)
    {
        byte[] arg = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(arg, Fd(step, "container"));
        long ret = SyscallsOf(ProcessOf(step)).Ioctl(Fd(step), VfioIoctl.GroupSetContainer, arg);
        if (ret >= 0 && _real?.IsFirst(step.Process) == true)
        {
            _real.GroupSet(Fd(step), Fd(step, "container"));
        }
        return Syscall(ret);
    }

    private StepResult GetDeviceFd(ScenarioStep step)
    {
        string device = step.Args.GetString("name");
        byte[] name = [.. Encoding.UTF8.GetBytes(_real is null ? device : _real.DeviceNameOf(device)), 0];
        long ret = SyscallsOf(ProcessOf(step)).Ioctl(Fd(step), VfioIoctl.GroupGetDeviceFd, name);
        if (ret >= 0 && _real?.IsFirst(step.Process) == true)
        {
            _real.DeviceOpened(device, Fd(step), (int)ret);
        }
        return NewFd(ret);
    }

    private StepResult DeviceGetInfo(ScenarioStep step) =>
        StructIoctl(step, VfioIoctl.DeviceGetInfo, VfioDeviceInfo.SizeOf, _ => { }, (b, r) =>
        {
            VfioDeviceInfo.TryRead(b, out VfioDeviceInfo i);
            r.Set("argsz", (ulong)i.Argsz);
            r.Set("flags", (ulong)i.Flags);
            r.Set("num_regions", (ulong)i.NumRegions);
            r.Set("num_irqs", (ulong)i.NumIrqs);
            r.Set("cap_offset", (ulong)i.CapOffset);
        });

    private StepResult DeviceGetRegionInfo(ScenarioStep step)
    {
        uint index = U32(step, "index");
        return StructIoctl(step, VfioIoctl.DeviceGetRegionInfo, VfioRegionInfo.SizeOf,
            b => new VfioRegionInfo { Index = index }.Write(b),
            (b, r) =>
            {
                VfioRegionInfo.TryRead(b, out VfioRegionInfo i);
                r.Set("argsz", (ulong)i.Argsz);
                r.Set("flags", (ulong)i.Flags);
                r.Set("index", (ulong)i.Index);
                r.Set("cap_offset", (ulong)i.CapOffset);
                r.Set("size", i.Size);
                r.Set("offset", i.Offset);
                r.Set("mmap", (i.Flags & RegionInfoFlags.Mmap) != 0);
            });
    }

    /// <summary>A config-space write of the command register's memory-enable bit through pwrite, as
    /// QEMU does when the guest toggles decode.</summary>
    private StepResult PciCommand(ScenarioStep step)
    {
        LabProcess p = ProcessOf(step);
        int fd = Fd(step);
        ulong offset = VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + 4;
        byte[] cmd = new byte[2];
        long ret = SyscallsOf(p).Pread(fd, cmd, offset);
        if (ret < 0)
        {
            return Syscall(ret);
        }
        ushort value = BinaryPrimitives.ReadUInt16LittleEndian(cmd);
        value = step.Args.GetBool("memory", true) ? (ushort)(value | 0x2) : (ushort)(value & ~0x2);
        BinaryPrimitives.WriteUInt16LittleEndian(cmd, value);
        ret = SyscallsOf(p).Pwrite(fd, cmd, offset);
        return Syscall(ret < 0 ? ret : 0);
    }

    private StepResult RawIoctl(ScenarioStep step)
    {
        LabProcess p = ProcessOf(step);
        int fd = Fd(step);
        ScenarioSymbol req = step.Args.GetSymbol("request");
        uint request;
        if (req.IsName)
        {
            if (!VfioIoctl.TryParse(req.Name!, out request))
            {
                throw new StepFailure(req.Location, $"unknown ioctl request '{req.Name}'");
            }
        }
        else
        {
            request = req.Number <= uint.MaxValue ? (uint)req.Number : throw new StepFailure(req.Location, $"request 0x{req.Number:x} does not fit 32 bits");
        }
        if (step.Has("value"))
        {
            return Syscall(SyscallsOf(p).Ioctl(fd, request, Value(step, "value")));
        }
        byte[] arg = step.Has("arg") ? step.Args.GetBytes("arg") : [];
        if (step.Has("buffer"))
        {
            ulong length = Value(step, "buffer");
            if (length > MaxIoctlBuffer)
            {
                throw new StepFailure(step.Args.GetLocation("buffer"), $"buffer 0x{length:x} is larger than the 1 MiB a step may pass");
            }
            if ((ulong)arg.Length < length)
            {
                Array.Resize(ref arg, (int)length);
            }
        }
        long ret = SyscallsOf(p).Ioctl(fd, request, arg);
        StepResult r = Syscall(ret);
        r.Set("bytes", ResultValue.FromBytes(arg));
        return r;
    }
}
