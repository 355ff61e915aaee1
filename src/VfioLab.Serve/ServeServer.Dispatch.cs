using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Linux;

namespace VfioLab.Serve;

public sealed partial class ServeServer
{
    private const int MaxTransfer = 16 << 20;

    private Reply Dispatch(Connection c, RequestHeader h, byte[] payload)
    {
        if (Wire.IsCtlOp(h.Op))
        {
            // vfiolab ctl: the operator's requests, from a process that is no client.
            return Control(h.Op, payload);
        }
        Errno who = ResolveClient(c, h.Pid, out ClientProcess? client);
        if (who != Errno.None)
        {
            Log($"{c}: pid {h.Pid} is neither the connection's peer ({c.PeerPid}) nor a descendant of a client: refused");
            return Reply.Of(who.AsReturn(), $"pid {h.Pid} unknown");
        }
        ReadOnlySpan<byte> p = payload;
        switch (h.Op)
        {
            case Wire.Hello:
                return Hello(c, client!, p);
            case Wire.Open:
                return Open(c, client!, p);
            case Wire.Attach:
                return Attach(c, client!, p);
            case Wire.Munmap:
                return Munmap(client!, p);
            default:
                break;
        }
        if (c.File is not { } file || !file.Holders.Contains(client!))
        {
            return Reply.Of(Errno.EBADF.AsReturn(), c.File is null ? "no file on this connection" : "the caller does not hold this file");
        }
        return h.Op switch
        {
            Wire.Ioctl => Ioctl(c, client!, file, p),
            Wire.Pread => Pread(client!, file, p),
            Wire.Pwrite => Pwrite(client!, file, p),
            Wire.MmapPrepare => MmapPrepare(client!, file, p),
            Wire.MmapCommit => MmapCommit(client!, file, p),
            _ => Reply.Of(Wire.EProto, "unknown op"),
        };
    }

    private static bool TooShort(ReadOnlySpan<byte> p, int need, out Reply reply)
    {
        reply = Reply.Of(Wire.EProto, $"payload of {p.Length} bytes, {need} needed");
        return p.Length < need;
    }

    private Reply Hello(Connection c, ClientProcess client, ReadOnlySpan<byte> p)
    {
        if (TooShort(p, 16, out Reply bad))
        {
            return bad;
        }
        c.IsSession = true;
        Register(c, BinaryPrimitives.ReadUInt64LittleEndian(p[8..]));
        byte[] root = Encoding.UTF8.GetBytes(RootPath);
        byte[] reply = new byte[8 + root.Length + 1];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, Wire.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(reply.AsSpan(4), (uint)Host.PageSize);
        root.CopyTo(reply, 8);
        return new Reply(0, 0, reply, $"preload v{BinaryPrimitives.ReadUInt32LittleEndian(p)} {client}");
    }

    private void Register(Connection c, ulong inode)
    {
        if (c.Inode != 0 && _byInode.TryGetValue(c.Inode, out Connection? old) && old == c)
        {
            _byInode.Remove(c.Inode);
        }
        c.Inode = inode;
        if (inode != 0)
        {
            _byInode[inode] = c;
        }
    }

    private Reply Open(Connection c, ClientProcess client, ReadOnlySpan<byte> p)
    {
        if (TooShort(p, 17, out Reply bad))
        {
            return bad;
        }
        string path = CString(p[16..]);
        if (!IsVfioPath(path))
        {
            Log($"{c}: OPEN of {path} refused: only /dev/vfio/vfio and /dev/vfio/GROUP are served");
            return Reply.Of(Errno.ENOENT.AsReturn(), $"{path} (outside /dev/vfio)");
        }
        if (c.File is not null || c.IsSession)
        {
            return Reply.Of(Errno.EINVAL.AsReturn(), $"{path} on a connection that is already a file");
        }
        int fd = client.Lab.Syscalls.Open(path);
        if (fd < 0)
        {
            _recorder?.Open(client, path, fd, null);
            return Reply.Of(fd, path);
        }
        c.File = new ModelFile(path == "/dev/vfio/vfio" ? FileKind.Container : FileKind.Group, fd, path, client);
        _recorder?.Open(client, path, fd, c.File);
        Register(c, BinaryPrimitives.ReadUInt64LittleEndian(p[8..]));
        return Reply.Of(0, path);
    }

    private static bool IsVfioPath(string path)
    {
        if (path == "/dev/vfio/vfio")
        {
            return true;
        }
        return path.StartsWith("/dev/vfio/", StringComparison.Ordinal) && path.Length > 10 && path.Length < 32 &&
            path.AsSpan(10).IndexOfAnyExceptInRange('0', '9') < 0;
    }

    private Reply Attach(Connection c, ClientProcess client, ReadOnlySpan<byte> p)
    {
        if (TooShort(p, 16, out Reply bad))
        {
            return bad;
        }
        ulong token = BinaryPrimitives.ReadUInt64LittleEndian(p);
        if (c.File is not null || c.IsSession || !_tokens.Remove(token, out ModelFile? file))
        {
            return Reply.Of(Errno.EINVAL.AsReturn(), $"token {token:x}");
        }
        c.File = file;
        file.Holders.Add(client);
        Register(c, BinaryPrimitives.ReadUInt64LittleEndian(p[8..]));
        return Reply.Of(0, file.ToString());
    }

    private Reply Munmap(ClientProcess client, ReadOnlySpan<byte> p)
    {
        if (TooShort(p, 16, out Reply bad))
        {
            return bad;
        }
        ulong addr = BinaryPrimitives.ReadUInt64LittleEndian(p);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(p[8..]);
        int r = client.Lab.Syscalls.Munmap(addr, length);
        _recorder?.Munmap(client, addr, length, r);
        ForgetBarMappings(client, addr, length);
        client.Refresh();
        return Reply.Of(r, $"0x{addr:x} +0x{length:x}");
    }

    // PREAD and PWRITE carry { u64 buf, u64 count, u64 offset }; the transfer is bounded by MaxTransfer.
    private static bool TryReadTransfer(ReadOnlySpan<byte> p, ModelFile file, out ulong buf, out ulong offset, out byte[] data,
        out string what, out Reply bad)
    {
        buf = offset = 0;
        data = [];
        what = "";
        if (TooShort(p, 24, out bad))
        {
            return false;
        }
        buf = BinaryPrimitives.ReadUInt64LittleEndian(p);
        ulong count = BinaryPrimitives.ReadUInt64LittleEndian(p[8..]);
        offset = BinaryPrimitives.ReadUInt64LittleEndian(p[16..]);
        data = new byte[(int)Math.Min(count, MaxTransfer)];
        what = $"{file.Path} 0x{count:x} bytes at 0x{offset:x}";
        return true;
    }

    private Reply Pread(ClientProcess client, ModelFile file, ReadOnlySpan<byte> p)
    {
        if (!TryReadTransfer(p, file, out ulong buf, out ulong offset, out byte[] data, out string what, out Reply bad))
        {
            return bad;
        }
        long r = client.Lab.Syscalls.Pread(file.Fd, data, offset);
        _recorder?.Pread(client, file, offset, (ulong)data.Length, r, data.AsSpan(0, (int)Math.Max(r, 0)));
        if (r > 0 && RemoteProcess.Write(client.Pid, buf, data.AsSpan(0, (int)r)) != r)
        {
            _recorder?.ClientGotOther(client, "its pread buffer was not writable");
            return Reply.Of(Errno.EFAULT.AsReturn(), what + " (the buffer is not writable)");
        }
        return Reply.Of(r, what);
    }

    private Reply Pwrite(ClientProcess client, ModelFile file, ReadOnlySpan<byte> p)
    {
        if (!TryReadTransfer(p, file, out ulong buf, out ulong offset, out byte[] data, out string what, out Reply bad))
        {
            return bad;
        }
        if (RemoteProcess.Read(client.Pid, buf, data) != data.Length)
        {
            _recorder?.NotReached(client, $"pwrite to {what}", Errno.EFAULT.AsReturn());
            return Reply.Of(Errno.EFAULT.AsReturn(), what + " (the buffer is not readable)");
        }
        long r = client.Lab.Syscalls.Pwrite(file.Fd, data, offset);
        _recorder?.Pwrite(client, file, offset, data, r);
        return Reply.Of(r, what);
    }

    // A process is a client when it is the connection's peer, or a descendant of a client (adopted by forking the
    // ancestor's simulated process, so it holds the same files as a forked child does).
    private Errno ResolveClient(Connection c, int pid, out ClientProcess? client)
    {
        if (_clients.TryGetValue(pid, out client) && !client.Exited)
        {
            return Errno.None;
        }
        client = null;
        if (pid <= 0)
        {
            return Errno.ESRCH;
        }
        ClientProcess? ancestor = null;
        int at = pid;
        for (int depth = 0; depth < 64 && ancestor is null; depth++)
        {
            string? status = ProcFiles.TryRead($"/proc/{at}/status");
            if (status is null || ProcFiles.ParseParent(status) is not int parent || parent <= 1)
            {
                break;
            }
            if (_clients.TryGetValue(parent, out ClientProcess? known) && !known.Exited)
            {
                ancestor = known;
            }
            at = parent;
        }
        if (ancestor is not null)
        {
            client = Adopt(pid, ancestor);
            return client is null ? Errno.ESRCH : Errno.None;
        }
        if (pid != c.PeerPid)
        {
            return Errno.ESRCH;
        }
        client = NewClient(pid);
        return client is null ? Errno.ESRCH : Errno.None;
    }

    private ClientProcess? NewClient(int pid)
    {
        string? limits = ProcFiles.TryRead($"/proc/{pid}/limits");
        string? status = ProcFiles.TryRead($"/proc/{pid}/status");
        if (limits is null || status is null)
        {
            return null;
        }
        ulong memlock = ProcFiles.ParseMemlock(limits) ?? LabHostBuilder.DefaultMemlockBytes;
        bool cap = ProcFiles.ParseCapIpcLock(status);
        ulong limit = memlock == ulong.MaxValue ? LabHostBuilder.Unlimited : memlock;
        LabProcess lab = Host.Spawn(UniqueName($"pid{pid}"), limit, cap);
        var client = new ClientProcess(pid, lab, null) { Listener = _recorder };
        _recorder?.ClientStarted(client, limit, cap);
        _clients[pid] = client;
        string? problem = client.Refresh();
        Log($"client {client}: memlock {(memlock == ulong.MaxValue ? "unlimited" : memlock.ToString(System.Globalization.CultureInfo.InvariantCulture))}, "
            + $"CAP_IPC_LOCK {(cap ? "yes" : "no")}, {client.MirroredCount} mappings mirrored{(problem is null ? "" : "; not mirrored: " + problem)}");
        WatchExit(client);
        return client;
    }

    private string UniqueName(string name)
    {
        string candidate = name;
        for (int i = 2; Host.TryGetProcess(candidate, out _); i++)
        {
            candidate = $"{name}-{i}";
        }
        return candidate;
    }
}
