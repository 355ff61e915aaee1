using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;

namespace VfioLab.Serve;

public sealed partial class ServeServer
{
    // The largest device mapping whose bytes are kept in step with the model (each needs a shadow copy and a compare
    // per call); a larger one is mapped in the model and the client, but its bytes are not synchronised (docs/serve.md).
    private const ulong MaxSyncedMapping = 64UL << 20;

    private readonly List<BarMapping> _barMappings = [];

    // A device region mapped by a client: its bytes live in a shared file under the root (the client's view), the
    // model's BAR holds its own copy, and the two are merged around every call through the shadow of the last merge.
    private sealed class BarMapping(ClientProcess client, ulong address, ulong length, string file, ulong fileOffset)
    {
        public ClientProcess Client { get; } = client;

        public ulong Address { get; } = address;

        public ulong Length { get; } = length;

        public string File { get; } = file;

        public ulong FileOffset { get; } = fileOffset;

        public byte[]? Shadow { get; set; }
    }

    private Reply MmapPrepare(ClientProcess client, ModelFile file, ReadOnlySpan<byte> p)
    {
        if (TooShort(p, 24, out Reply bad))
        {
            return bad;
        }
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(p);
        var prot = (MemoryProtection)BinaryPrimitives.ReadUInt32LittleEndian(p[8..]);
        var flags = (MmapFlags)BinaryPrimitives.ReadUInt32LittleEndian(p[12..]);
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(p[16..]);
        string what = $"{file.Path} 0x{length:x} bytes at 0x{offset:x}";
        // The model decides as vfio-pci's mmap does: a trial mapping where the model likes, undone at once.
        long trial = client.Lab.Syscalls.Mmap(0, length, prot, flags & ~MmapFlags.Fixed, file.Fd, offset);
        if (trial < 0)
        {
            if ((flags & MmapFlags.Shared) != 0)
            {
                _recorder?.MmapRegion(client, file, 0, length, prot, offset, trial);
            }
            else
            {
                // mmap_region maps MAP_SHARED; a refused private mapping is not what a step would ask.
                _recorder?.NotReplayed(client, $"a MAP_PRIVATE mmap of {what}, refused by the model ({ErrnoExtensions.FromReturn(trial)}); no step maps a region privately");
            }
            return Reply.Of(trial, what);
        }
        client.Lab.Syscalls.Munmap((ulong)trial, length);
        uint index = VfioPci.OffsetToIndex(offset);
        ulong regionOffset = offset - VfioPci.IndexToOffset(index);
        Span<byte> info = stackalloc byte[VfioRegionInfo.SizeOf];
        new VfioRegionInfo { Argsz = VfioRegionInfo.SizeOf, Index = index }.Write(info);
        if (client.Lab.Syscalls.Ioctl(file.Fd, VfioIoctl.DeviceGetRegionInfo, info) < 0)
        {
            return Reply.Of(Errno.EINVAL.AsReturn(), what);
        }
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(info[VfioRegionInfo.Offsets.Size..]);
        string dir = Path.Combine(RootPath, "regions");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, $"{file.Path}-{index}");
        using (var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite))
        {
            if ((ulong)fs.Length < size)
            {
                fs.SetLength((long)size);
            }
        }
        byte[] name = Encoding.UTF8.GetBytes(path);
        byte[] reply = new byte[8 + name.Length + 1];
        BinaryPrimitives.WriteUInt64LittleEndian(reply, regionOffset);
        name.CopyTo(reply, 8);
        return new Reply(0, 0, reply, what + " -> " + path);
    }

    private Reply MmapCommit(ClientProcess client, ModelFile file, ReadOnlySpan<byte> p)
    {
        if (TooShort(p, 32, out Reply bad))
        {
            return bad;
        }
        ulong addr = BinaryPrimitives.ReadUInt64LittleEndian(p);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(p[8..]);
        var prot = (MemoryProtection)BinaryPrimitives.ReadUInt32LittleEndian(p[16..]);
        var flags = (MmapFlags)BinaryPrimitives.ReadUInt32LittleEndian(p[20..]);
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(p[24..]);
        string what = $"{file.Path} 0x{length:x} bytes at 0x{offset:x} to 0x{addr:x}";
        long r = client.Lab.Syscalls.Mmap(addr, length, prot, flags | MmapFlags.Fixed, file.Fd, offset);
        _recorder?.MmapRegion(client, file, addr, length, prot, offset, r);
        if (r < 0)
        {
            return Reply.Of(r, what);
        }
        client.DeviceMappings.Add(new KeyValuePair<ulong, ulong>(addr, length));
        uint index = VfioPci.OffsetToIndex(offset);
        var bar = new BarMapping(client, addr, length, Path.Combine(RootPath, "regions", $"{file.Path}-{index}"), offset - VfioPci.IndexToOffset(index));
        if (length <= MaxSyncedMapping && System.IO.File.Exists(bar.File))
        {
            // The model's bytes are the region's: the client starts from them.
            byte[] model = new byte[length];
            if (client.Lab.Syscalls.ReadMemory(addr, model) == 0)
            {
                using Microsoft.Win32.SafeHandles.SafeFileHandle h = System.IO.File.OpenHandle(bar.File, FileMode.Open, FileAccess.Write);
                RandomAccess.Write(h, model, (long)bar.FileOffset);
                bar.Shadow = model;
            }
            _barMappings.Add(bar);
        }
        return Reply.Of(0, what);
    }

    private void ForgetBarMappings(ClientProcess client, ulong addr, ulong length)
    {
        _barMappings.RemoveAll(b => b.Client == client && b.Address >= addr && b.Address + b.Length <= addr + length);
        client.DeviceMappings.RemoveAll(m => m.Key >= addr && m.Key + m.Value <= addr + length);
    }

    // Merges each synchronised device mapping's two copies page by page: a page only the client stored to goes to
    // the model's BAR, a page only the model changed goes to the file; when both changed, the client's store wins.
    private void SyncBars()
    {
        int page = (int)Host.PageSize;
        for (int i = _barMappings.Count - 1; i >= 0; i--)
        {
            BarMapping b = _barMappings[i];
            if (b.Client.Exited || !b.Client.Lab.IsAlive)
            {
                _barMappings.RemoveAt(i);
                continue;
            }
            byte[] model = new byte[b.Length];
            if (b.Client.Lab.Syscalls.ReadMemory(b.Address, model) != 0)
            {
                // The model zapped the mapping (reset, memory disabled): the client's file keeps its bytes.
                continue;
            }
            byte[] shared = new byte[b.Length];
            using Microsoft.Win32.SafeHandles.SafeFileHandle h = System.IO.File.OpenHandle(b.File, FileMode.Open, FileAccess.ReadWrite);
            RandomAccess.Read(h, shared, (long)b.FileOffset);
            byte[] shadow = b.Shadow ?? model;
            for (int at = 0; at < model.Length; at += page)
            {
                int n = Math.Min(page, model.Length - at);
                Span<byte> m = model.AsSpan(at, n);
                Span<byte> f = shared.AsSpan(at, n);
                Span<byte> s = shadow.AsSpan(at, n);
                bool clientStored = !f.SequenceEqual(s);
                bool modelChanged = !m.SequenceEqual(s);
                if (clientStored)
                {
                    int stored = b.Client.Lab.Syscalls.WriteMemory(b.Address + (ulong)at, f);
                    _recorder?.BarStore(b.Client, b.Address + (ulong)at, f, stored);
                    f.CopyTo(m);
                }
                else if (modelChanged)
                {
                    RandomAccess.Write(h, m.ToArray(), (long)b.FileOffset + at);
                }
            }
            b.Shadow = model;
        }
    }
}
