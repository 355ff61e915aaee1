using System.Buffers.Binary;
using System.Globalization;
using VfioLab.Abi;
using VfioLab.Linux;

namespace VfioLab.Serve;

public sealed partial class ServeServer
{
    // The most of an argsz struct the server copies in: the model answers within argsz, and no VFIO struct with its
    // inline data (SET_IRQS's fds, a capability chain) comes near this.
    private const int MaxArgument = 1 << 20;

    // The most the server reads ahead of argsz so that a struct's fixed part (minsz) is there even when argsz is
    // smaller: the kernel copies minsz first and only then finds argsz too small (EINVAL, not EFAULT).
    private const int MinRead = 256;

    private enum ArgKind
    {
        Value,
        FdPointer,
        String,
        Argsz,
    }

    private static ArgKind KindOf(FileKind file, uint request) => (file, request) switch
    {
        (FileKind.Container, VfioIoctl.GetApiVersion or VfioIoctl.CheckExtension or VfioIoctl.SetIommu) => ArgKind.Value,
        (FileKind.Container, VfioIoctl.IommuEnable or VfioIoctl.IommuDisable) => ArgKind.Value,
        (FileKind.Container, >= VfioIoctl.IommuGetInfo and <= VfioIoctl.EehPeOp) => ArgKind.Argsz,
        (FileKind.Group, VfioIoctl.GroupGetStatus) => ArgKind.Argsz,
        (FileKind.Group, VfioIoctl.GroupSetContainer) => ArgKind.FdPointer,
        (FileKind.Group, VfioIoctl.GroupGetDeviceFd) => ArgKind.String,
        (FileKind.Device, VfioIoctl.DeviceReset) => ArgKind.Value,
        (FileKind.Device, >= VfioIoctl.DeviceGetInfo and <= VfioIoctl.DeviceFeature) => ArgKind.Argsz,
        _ => ArgKind.Value,
    };

    // The request's name on this kind of file, for the trace: a device's 0x3B71 is VFIO_DEVICE_PCI_HOT_RESET, a
    // container's VFIO_IOMMU_MAP_DMA (a container's codes may still have a type1 and an sPAPR name).
    private static string NameOn(FileKind kind, uint request)
    {
        string[] names = NamesOn(kind, request);
        return names.Length == 0 ? VfioIoctl.Describe(request) : string.Join('/', names);
    }

    internal static string[] NamesOn(FileKind kind, uint request) => [.. VfioIoctl.All.Where(i => i.Code == request && kind switch
    {
        FileKind.Container => i.Target is VfioIoctlTarget.Container or VfioIoctlTarget.Type1 or VfioIoctlTarget.Spapr,
        FileKind.Group => i.Target == VfioIoctlTarget.Group,
        _ => i.Target == VfioIoctlTarget.Device,
    }).Select(i => i.Name)];

    private Reply Ioctl(Connection c, ClientProcess client, ModelFile file, ReadOnlySpan<byte> p)
    {
        if (TooShort(p, 16, out Reply bad))
        {
            return bad;
        }
        uint request = BinaryPrimitives.ReadUInt32LittleEndian(p);
        ulong arg = BinaryPrimitives.ReadUInt64LittleEndian(p[8..]);
        string name = $"{NameOn(file.Kind, request)} on {file.Path}";
        switch (KindOf(file.Kind, request))
        {
            case ArgKind.Value:
                {
                    long r = client.Lab.Syscalls.Ioctl(file.Fd, request, arg);
                    _recorder?.ValueIoctl(client, file, request, arg, r);
                    return Reply.Of(r, $"{name} 0x{arg:x}");
                }
            case ArgKind.FdPointer:
                {
                    Span<byte> four = stackalloc byte[4];
                    if (RemoteProcess.Read(client.Pid, arg, four) != 4)
                    {
                        _recorder?.NotReached(client, name, Errno.EFAULT.AsReturn());
                        return Reply.Of(Errno.EFAULT.AsReturn(), name);
                    }
                    int realFd = BinaryPrimitives.ReadInt32LittleEndian(four);
                    Errno e = ModelFdOf(client, realFd, FileKind.Container, out int modelFd, out ModelFile? container);
                    if (e != Errno.None)
                    {
                        _recorder?.NotReached(client, $"{name} fd {realFd}", e.AsReturn());
                        return Reply.Of(e.AsReturn(), $"{name} fd {realFd}");
                    }
                    BinaryPrimitives.WriteInt32LittleEndian(four, modelFd);
                    long r = client.Lab.Syscalls.Ioctl(file.Fd, request, four);
                    _recorder?.SetContainer(client, file, container!, r);
                    return Reply.Of(r, $"{name} fd {realFd}");
                }
            case ArgKind.String:
                return GetDeviceFd(client, file, request, arg, name);
            default:
                return ArgszIoctl(client, file, request, arg, name);
        }
    }

    private Reply GetDeviceFd(ClientProcess client, ModelFile file, uint request, ulong arg, string name)
    {
        // The kernel reads the name with strndup_user(PAGE_SIZE): a string longer than that is EINVAL, an unreadable
        // byte before the NUL EFAULT. The span passed ends where the readable bytes end, so the model finds the same.
        byte[] text = new byte[(int)Host.PageSize];
        long got = RemoteProcess.Read(client.Pid, arg, text);
        int length = got <= 0 ? 0 : (int)got;
        int nul = Array.IndexOf(text, (byte)0, 0, length);
        Span<byte> span = text.AsSpan(0, nul >= 0 ? nul + 1 : length);
        string device = CString(span);
        long r = client.Lab.Syscalls.Ioctl(file.Fd, request, span);
        if (r < 0)
        {
            _recorder?.GetDeviceFd(client, file, span, r, null);
            return Reply.Of(r, $"{name} {device}");
        }
        var created = new ModelFile(FileKind.Device, (int)r, device, client);
        created.Holders.Clear();
        _recorder?.GetDeviceFd(client, file, span, r, created);
        ulong token = _nextToken++;
        _tokens[token] = created;
        byte[] payload = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, token);
        return new Reply(r, Wire.ReplyNewFile, payload, $"{name} {device}");
    }

    private Reply ArgszIoctl(ClientProcess client, ModelFile file, uint request, ulong arg, string name)
    {
        Span<byte> head = stackalloc byte[4];
        if (RemoteProcess.Read(client.Pid, arg, head) != 4)
        {
            _recorder?.NotReached(client, name, Errno.EFAULT.AsReturn());
            return Reply.Of(Errno.EFAULT.AsReturn(), name);
        }
        uint argsz = BinaryPrimitives.ReadUInt32LittleEndian(head);
        int want = (int)Math.Min(Math.Max(argsz, MinRead), MaxArgument);
        byte[] buffer = new byte[want];
        long got = RemoteProcess.Read(client.Pid, arg, buffer);
        if (got < 4)
        {
            _recorder?.NotReached(client, name, Errno.EFAULT.AsReturn());
            return Reply.Of(Errno.EFAULT.AsReturn(), name);
        }
        // Only the readable prefix is passed: the model faults (EFAULT) exactly where it reaches past it.
        Span<byte> span = buffer.AsSpan(0, (int)got);
        byte[] before = span.ToArray();
        if (file.Kind == FileKind.Container && request is VfioIoctl.IommuMapDma or VfioIoctl.IommuUnmapDma or VfioIoctl.IommuDirtyPages
            or VfioIoctl.IommuSpaprRegisterMemory or VfioIoctl.IommuSpaprUnregisterMemory)
        {
            if (client.Refresh() is { } problem)
            {
                Log($"{client}: mirror not complete: {problem}");
            }
        }
        Errno translated = TranslateInlineFds(client, file, request, span);
        var eventFds = new List<EventFdBridge>();
        if (translated == Errno.None)
        {
            translated = TranslateEventFds(client, file, request, span, eventFds);
        }
        if (translated != Errno.None)
        {
            KeepEventFds(eventFds, callSucceeded: false);
            _recorder?.NotReached(client, name + " (an fd inside it)", translated.AsReturn());
            return Reply.Of(translated.AsReturn(), name);
        }
        UserBitmap? bitmap = DirtyBitmapOf(file, request, span);
        byte[]? bitmapIn = null;
        int bitmapInResult = 0;
        if (bitmap is { } b)
        {
            bitmapIn = CopyBitmapIn(client, b, out bitmapInResult);
        }
        byte[]? passed = _recorder is null ? null : span.ToArray();
        long r = client.Lab.Syscalls.Ioctl(file.Fd, request, span);
        byte[]? bitmapOut = r >= 0 && bitmap is { } done ? CopyBitmapOut(client, done) : null;
        if (_recorder is not null)
        {
            ScenarioRecorder.DirtyBitmap? recorded = bitmap is { } m
                ? new ScenarioRecorder.DirtyBitmap(m.Data, m.Size, bitmapIn, bitmapInResult, bitmapOut)
                : null;
            _recorder.StructIoctl(client, file, request, passed!, span, r, [.. eventFds.Select(e => e.ModelFd)], recorded);
        }
        KeepEventFds(eventFds, r >= 0);
        RestoreInlineFds(file, request, span, before);
        if (!WriteBack(client, arg, before, span))
        {
            Log($"{client}: {name}: the reply could not be written back (EFAULT after the model acted)");
            _recorder?.ClientGotOther(client, "the reply could not be written back");
            return Reply.Of(Errno.EFAULT.AsReturn(), name);
        }
        if (r >= 0 && bitmap is { } written && (bitmapOut is null || RemoteProcess.Write(client.Pid, written.Data, bitmapOut) != bitmapOut.Length))
        {
            _recorder?.ClientGotOther(client, "the dirty bitmap could not be copied out");
            return Reply.Of(Errno.EFAULT.AsReturn(), name + " (dirty bitmap not writable)");
        }
        return Reply.Of(r, $"{name} argsz {argsz}{MapSummary(file.Kind, request, before)}");
    }

    // A type1 MAP_DMA's or UNMAP_DMA's range as the client asked it, for the trace (what a VMM's memory listener did).
    private static string MapSummary(FileKind kind, uint request, ReadOnlySpan<byte> arg) => (kind, request) switch
    {
        (FileKind.Container, VfioIoctl.IommuMapDma) when arg.Length >= 32 => string.Create(CultureInfo.InvariantCulture,
            $" vaddr 0x{BinaryPrimitives.ReadUInt64LittleEndian(arg[8..]):x} iova 0x{BinaryPrimitives.ReadUInt64LittleEndian(arg[16..]):x} size 0x{BinaryPrimitives.ReadUInt64LittleEndian(arg[24..]):x}"),
        (FileKind.Container, VfioIoctl.IommuUnmapDma) when arg.Length >= 24 => string.Create(CultureInfo.InvariantCulture,
            $" iova 0x{BinaryPrimitives.ReadUInt64LittleEndian(arg[8..]):x} size 0x{BinaryPrimitives.ReadUInt64LittleEndian(arg[16..]):x}"),
        _ => "",
    };

    // Writes back the bytes the model changed (the kernel's copy_to_user of the reply), as one copy from the first
    // changed byte to the last.
    private static bool WriteBack(ClientProcess client, ulong arg, ReadOnlySpan<byte> before, ReadOnlySpan<byte> after)
    {
        int first = -1;
        int last = -1;
        for (int i = 0; i < after.Length; i++)
        {
            if (before[i] != after[i])
            {
                if (first < 0)
                {
                    first = i;
                }
                last = i;
            }
        }
        if (first < 0)
        {
            return true;
        }
        int n = last - first + 1;
        return RemoteProcess.Write(client.Pid, arg + (ulong)first, after.Slice(first, n)) == n;
    }

    // The model's fd number, in the caller's simulated process, of the file behind the caller's real fd: the real fd
    // names a socket, the socket's inode names a connection, the connection is a model file.
    private Errno ModelFdOf(ClientProcess client, int realFd, FileKind expected, out int modelFd) =>
        ModelFdOf(client, realFd, expected, out modelFd, out _);

    private Errno ModelFdOf(ClientProcess client, int realFd, FileKind expected, out int modelFd, out ModelFile? file)
    {
        modelFd = -1;
        file = null;
        if (realFd < 0)
        {
            return Errno.EBADF;
        }
        string? target = ProcFiles.FdTarget(client.Pid, realFd);
        if (target is null)
        {
            return Errno.EBADF;
        }
        // A real file that is not one of the server's: the kernel finds it is not a VFIO file of the right kind.
        if (ProcFiles.SocketInode(target) is not ulong inode || !_byInode.TryGetValue(inode, out Connection? c) ||
            c.File is not { } f || !f.Holders.Contains(client) || f.Kind != expected)
        {
            return Errno.EINVAL;
        }
        modelFd = f.Fd;
        file = f;
        return Errno.None;
    }

    // PCI_HOT_RESET carries group fds inline: struct vfio_pci_hot_reset { argsz, flags, count, group_fds[] }.
    private Errno TranslateInlineFds(ClientProcess client, ModelFile file, uint request, Span<byte> span)
    {
        if (file.Kind != FileKind.Device || request != VfioIoctl.DevicePciHotReset || span.Length < 12)
        {
            return Errno.None;
        }
        uint argsz = BinaryPrimitives.ReadUInt32LittleEndian(span);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
        for (uint i = 0; i < count && 12 + (i + 1) * 4 <= Math.Min(argsz, (uint)span.Length); i++)
        {
            Span<byte> slot = span.Slice(12 + (int)i * 4, 4);
            Errno e = ModelFdOf(client, BinaryPrimitives.ReadInt32LittleEndian(slot), FileKind.Group, out int modelFd);
            if (e != Errno.None)
            {
                return e;
            }
            BinaryPrimitives.WriteInt32LittleEndian(slot, modelFd);
        }
        return Errno.None;
    }

    // The fds the server put in place of the client's are not the client's business: its bytes are put back before
    // the changed bytes are written back.
    private static void RestoreInlineFds(ModelFile file, uint request, Span<byte> span, ReadOnlySpan<byte> before)
    {
        if (file.Kind == FileKind.Device && request == VfioIoctl.DevicePciHotReset && span.Length >= 12)
        {
            before[12..].CopyTo(span[12..]);
        }
        if (file.Kind == FileKind.Device && request == VfioIoctl.DeviceSetIrqs && span.Length >= VfioIrqSet.SizeOf)
        {
            before[VfioIrqSet.SizeOf..].CopyTo(span[VfioIrqSet.SizeOf..]);
        }
    }

    private readonly record struct UserBitmap(ulong Data, ulong Size);

    // The user pointer of a dirty bitmap the call writes: UNMAP_DMA with GET_DIRTY_BITMAP (the vfio_bitmap in data[]),
    // DIRTY_PAGES with GET_BITMAP (vfio_iommu_type1_dirty_bitmap_get in data[]).
    private static UserBitmap? DirtyBitmapOf(ModelFile file, uint request, ReadOnlySpan<byte> span)
    {
        if (file.Kind != FileKind.Container || span.Length < 8)
        {
            return null;
        }
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(span[4..]);
        int at = request switch
        {
            VfioIoctl.IommuUnmapDma when (flags & (uint)DmaUnmapFlags.GetDirtyBitmap) != 0 => VfioIommuType1DmaUnmap.SizeOf,
            VfioIoctl.IommuDirtyPages when (flags & (uint)DirtyPagesFlags.GetBitmap) != 0 =>
                VfioIommuType1DirtyBitmap.Offsets.Data + VfioIommuType1DirtyBitmapGet.Offsets.Bitmap,
            _ => -1,
        };
        if (at < 0 || span.Length < at + VfioBitmap.SizeOf)
        {
            return null;
        }
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(span[(at + VfioBitmap.Offsets.Size)..]);
        ulong data = BinaryPrimitives.ReadUInt64LittleEndian(span[(at + VfioBitmap.Offsets.Data)..]);
        return size is 0 or > MaxTransfer ? null : new UserBitmap(data, size);
    }

    // The client's bitmap bytes copied into the model's memory (null when they could not be read: the kernel finds
    // out only when it copies the bitmap out, and the model does the same with what it has); `stored` is the model's
    // answer to the copy.
    private static byte[]? CopyBitmapIn(ClientProcess client, UserBitmap b, out int stored)
    {
        stored = 0;
        byte[] bytes = new byte[b.Size];
        long got = RemoteProcess.Read(client.Pid, b.Data, bytes);
        if (got != bytes.Length)
        {
            return null;
        }
        stored = client.Lab.Syscalls.WriteMemory(b.Data, bytes);
        return bytes;
    }

    // The bitmap the model wrote, to copy to the client (null when the model's memory there cannot be read).
    private static byte[]? CopyBitmapOut(ClientProcess client, UserBitmap b)
    {
        byte[] bytes = new byte[b.Size];
        return client.Lab.Syscalls.ReadMemory(b.Data, bytes) != 0 ? null : bytes;
    }
}
