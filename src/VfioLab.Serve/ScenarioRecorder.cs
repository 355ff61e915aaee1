using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Scenarios;

namespace VfioLab.Serve;

/// <summary>
/// The calls real clients made, as a scenario that <c>vfiolab run</c> replays with the same results
/// (<c>vfiolab serve --record FILE</c>, docs/serve.md): the host file the server started from, one process per client,
/// and one step per call the model answered, at the point the model answered it, each expecting what the model
/// answered (the errno, the result, the bytes an ioctl wrote back, the data a read returned).
/// </summary>
/// <remarks>
/// The server calls it under its gate, right where it calls the model, so the steps are in the model's order.
/// Fds and processes are named as scenario files name them (<c>container1</c>, <c>group2</c>, <c>client1</c>); the
/// client's memory a call names (a MAP_DMA's vaddr, a dirty bitmap) is mapped by an <c>mmap</c> step at the client's
/// address just before the call (<see cref="RecordedMemory"/>); a device region at the client's address
/// (<c>mmap_region</c> with <c>at</c>); a SET_IRQS eventfd is an <c>eventfd</c> step; a client forked from another is
/// a <c>fork</c> step of its parent, at the point the server adopted it.
/// </remarks>
internal sealed class ScenarioRecorder : IMirrorListener
{
    // The most data a recorded step states in full (a region read's data, a dirty bitmap read back).
    private const int MaxStatedData = 16 << 10;

    // The most a region_read or region_write step may move (the runner's limit).
    private const ulong MaxRegionAccess = 1 << 20;

    private readonly List<string> _steps = [];
    private readonly List<string> _processes = [];
    private readonly HashSet<string> _taken;
    private readonly Dictionary<ClientProcess, Client> _clients = [];
    private readonly Dictionary<ModelFile, string> _files = [];
    private readonly string _hostText;
    private readonly string _hostFile;
    private readonly string _hostName;
    private int _calls;

    // A recorded process: its name, its memory and its eventfds (model fd to name).
    private sealed class Client(string name, RecordedMemory memory, Dictionary<int, string> eventFds)
    {
        public string Name { get; } = name;

        public RecordedMemory Memory { get; } = memory;

        public Dictionary<int, string> EventFds { get; } = eventFds;
    }

    public ScenarioRecorder(string path, string hostText, string hostFile)
    {
        Path = path;
        _hostText = hostText;
        _hostFile = hostFile;
        ScenarioDocument host = ScenarioDocument.Parse(hostText, hostFile);
        _hostName = host.Name;
        _taken = [.. ScenarioFile.NamesIn(host), "main"];
    }

    /// <summary>Where the scenario is written.</summary>
    public string Path { get; }

    /// <summary>Steps recorded so far (comments not counted).</summary>
    public int StepCount { get; private set; }

    /// <summary>The scenario as recorded so far: the host file with the clients' processes and steps added.</summary>
    public string Compose()
    {
        string[] header =
        [
            $"Recorded by vfiolab serve --record from {_hostFile}: {_calls} client call(s) the model answered, {_clients.Count} client process(es).",
            "Each step expects what the model answered the client; vfiolab run replays it with the same results (docs/serve.md).",
        ];
        return ScenarioFile.ExtendHost(_hostText, _hostFile, _hostName + "-recorded",
            $"the calls real clients made against {_hostName}, recorded by vfiolab serve", header, _processes, _steps);
    }

    /// <summary>Writes <see cref="Compose"/> to <see cref="Path"/> whole or not at all.</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    /// <exception cref="UnauthorizedAccessException">It is not writable.</exception>
    public void Save() => ScenarioFile.WriteAtomically(Path, Compose());

    // ---- processes ----

    public void ClientStarted(ClientProcess c, ulong memlock, bool capIpcLock)
    {
        string name = Bind("client");
        _clients[c] = new Client(name, new RecordedMemory(), []);
        string limit = memlock == LabHostBuilder.Unlimited ? "unlimited" : ScenarioFile.Size(memlock);
        _processes.Add(Invariant($"  - {{ name: {name}, memlock: {limit}, cap_ipc_lock: {(capIpcLock ? "true" : "false")} }}   # real pid {c.Pid}"));
    }

    public void Forked(ClientProcess parent, ClientProcess child)
    {
        if (!_clients.TryGetValue(parent, out Client? p))
        {
            return;
        }
        string name = Bind("client");
        _clients[child] = new Client(name, p.Memory.Fork(), new Dictionary<int, string>(p.EventFds));
        Comment($"real pid {child.Pid}, a child of {parent.Pid}: forked where the server first saw it");
        Step(parent, "fork", $"as: {name}", null);
    }

    public void Exited(ClientProcess c) => Step(c, "exit", "", null, "the real process exited");

    // ---- memory ----

    public void Mapped(ClientProcess client, ulong start, ulong end, RealMapping kind)
    {
        if (_clients.TryGetValue(client, out Client? c))
        {
            c.Memory.Mapped(start, end, kind);
        }
    }

    public void Unmapped(ClientProcess client, ulong start, ulong end)
    {
        if (!_clients.TryGetValue(client, out Client? c))
        {
            return;
        }
        foreach (RecordedMemory.Piece gone in c.Memory.Remove(start, end))
        {
            Step(client, "munmap", Invariant($"vaddr: 0x{gone.Start:x}, size: 0x{gone.End - gone.Start:x}"), null, "the client's mapping changed");
        }
    }

    // The memory [start, start + size) a call names: the pieces of the mirror there that the scenario has not mapped
    // yet are mapped now, where the client has them.
    private void Name(ClientProcess client, ulong start, ulong size)
    {
        if (size == 0 || !_clients.TryGetValue(client, out Client? c))
        {
            return;
        }
        ulong end = start > ulong.MaxValue - size ? ulong.MaxValue : start + size;
        foreach (RecordedMemory.Piece p in c.Memory.Name(start, end))
        {
            RealMapping m = p.Kind;
            string? prot = m.Read && m.Write ? "rw" : m.Read && !m.Write ? "r" : null;
            string what = m.Path.Length > 0 ? $"{m.Kind} mapping {m.Path}" : $"{m.Kind} memory";
            if (prot is null)
            {
                Comment(Invariant($"not recreated: 0x{p.Start:x}-0x{p.End:x} {what} has protection no step states (neither rw nor r)"));
                continue;
            }
            string backing = m.IsHugeTlb ? (m.PageSize >= 1UL << 30 ? "hugetlb-1g" : "hugetlb-2m") : m.Shared ? "shared" : "anonymous";
            Step(client, "mmap", Invariant($"size: {ScenarioFile.Size(p.End - p.Start)}, backing: {backing}, prot: {prot}, at: 0x{p.Start:x}"), null,
                $"the client's {what}");
        }
    }

    public void BarStore(ClientProcess client, ulong vaddr, ReadOnlySpan<byte> data, int result)
    {
        Step(client, "write", Invariant($"vaddr: 0x{vaddr:x}, data: {ScenarioFile.Hex(data)}"), ExpectErrno(result), "the client's CPU stored to its device mapping");
    }

    public void Munmap(ClientProcess client, ulong addr, ulong length, long result)
    {
        _calls++;
        if (_clients.TryGetValue(client, out Client? c))
        {
            c.Memory.Remove(addr, addr > ulong.MaxValue - length ? ulong.MaxValue : addr + length);
        }
        Step(client, "munmap", Invariant($"vaddr: 0x{addr:x}, size: 0x{length:x}"), Expect(result, statesZero: false), "munmap over a device mapping");
    }

    public void MmapRegion(ClientProcess client, ModelFile file, ulong addr, ulong length, MemoryProtection prot, ulong offset, long result)
    {
        _calls++;
        uint index = VfioPci.OffsetToIndex(offset);
        ulong inRegion = offset - VfioPci.IndexToOffset(index);
        string? p = (prot & ~MemoryProtection.Exec) switch
        {
            MemoryProtection.Read | MemoryProtection.Write => "rw",
            MemoryProtection.Read => "r",
            _ => null,
        };
        if (p is null)
        {
            Comment(Invariant($"not recorded: mmap of {file.Path} region {index} with protection {prot}, which no step states"));
            return;
        }
        if (result >= 0 && _clients.TryGetValue(client, out Client? c))
        {
            // MAP_FIXED replaces whatever the model had there; the step does the same in the replay.
            c.Memory.Remove(addr, addr + length);
        }
        string at = result >= 0 ? Invariant($", at: 0x{addr:x}") : "";
        Step(client, "mmap_region", Invariant($"device_fd: {FileName(file)}, index: {index}, offset: 0x{inRegion:x}, size: 0x{length:x}, prot: {p}{at}"),
            result < 0 ? ExpectErrno(result) : null);
    }

    // ---- files ----

    public void Open(ClientProcess client, string path, long result, ModelFile? file)
    {
        _calls++;
        string bind = "";
        if (result >= 0 && file is not null)
        {
            string name = Bind(file.Kind == FileKind.Container ? "container" : "group" + path[10..]);
            _files[file] = name;
            bind = $", as: {name}";
        }
        Step(client, "open", $"path: \"{ScenarioFile.Clean(path)}\"{bind}", result < 0 ? ExpectErrno(result) : null);
    }

    public void Closed(ClientProcess holder, ModelFile file, int result)
    {
        if (_files.TryGetValue(file, out string? name))
        {
            Step(holder, "close", $"fd: {name}", ExpectErrno(result), "the client's last reference to the file was closed");
        }
    }

    public void EventFdClosed(ClientProcess client, int modelFd)
    {
        if (_clients.TryGetValue(client, out Client? c) && c.EventFds.Remove(modelFd, out string? name))
        {
            Step(client, "close", $"fd: {name}", null, "the call failed, so the server let its eventfd go");
        }
    }

    /// <summary>The client wrote its INTx unmask eventfd (the server took the count and wrote it to the model's).</summary>
    public void EventFdWritten(ClientProcess client, int modelFd, ulong value, long result)
    {
        if (_clients.TryGetValue(client, out Client? c) && c.EventFds.TryGetValue(modelFd, out string? name))
        {
            Step(client, "eventfd_write", Invariant($"fd: {name}, value: {value}"), result < 0 ? ExpectErrno(result) : null,
                "the client wrote its unmask eventfd");
        }
    }

    public void Pread(ClientProcess client, ModelFile file, ulong offset, ulong count, long result, ReadOnlySpan<byte> data)
    {
        _calls++;
        if (!RegionAccess(file, offset, count, "pread", out string where))
        {
            return;
        }
        string expect = result < 0 ? ExpectErrno(result)!
            : result <= MaxStatedData ? Invariant($"expect: {{ result: {result}, data: {ScenarioFile.Hex(data[..(int)result])} }}")
            : Invariant($"expect: {{ result: {result} }}");
        Step(client, "region_read", Invariant($"{where}, size: 0x{count:x}"), expect);
    }

    public void Pwrite(ClientProcess client, ModelFile file, ulong offset, ReadOnlySpan<byte> data, long result)
    {
        _calls++;
        if (data.IsEmpty || !RegionAccess(file, offset, (ulong)data.Length, "pwrite", out string where))
        {
            if (data.IsEmpty)
            {
                Comment($"not recorded: a pwrite of 0 bytes to {file.Path}");
            }
            return;
        }
        Step(client, "region_write", $"{where}, data: {ScenarioFile.Hex(data)}", Expect(result, statesZero: true));
    }

    private bool RegionAccess(ModelFile file, ulong offset, ulong count, string call, out string where)
    {
        uint index = VfioPci.OffsetToIndex(offset);
        ulong inRegion = offset - VfioPci.IndexToOffset(index);
        where = Invariant($"fd: {FileName(file)}, index: {index}, offset: 0x{inRegion:x}");
        if (count > MaxRegionAccess)
        {
            Comment(Invariant($"not recorded: a {call} of 0x{count:x} bytes at 0x{offset:x} of {file.Path} (a step moves at most 1 MiB)"));
            return false;
        }
        return true;
    }

    // ---- ioctls ----

    public void ValueIoctl(ClientProcess client, ModelFile file, uint request, ulong arg, long result)
    {
        _calls++;
        Step(client, "ioctl", Invariant($"fd: {FileName(file)}, request: {RequestName(file.Kind, request)}, value: 0x{arg:x}"), Expect(result, statesZero: true));
    }

    public void SetContainer(ClientProcess client, ModelFile group, ModelFile container, long result)
    {
        _calls++;
        Step(client, "group_set_container", $"fd: {FileName(group)}, container: {FileName(container)}", Expect(result, statesZero: false));
    }

    public void GetDeviceFd(ClientProcess client, ModelFile group, ReadOnlySpan<byte> name, long result, ModelFile? created)
    {
        _calls++;
        int nul = name.IndexOf((byte)0);
        string device = nul < 0 ? "" : Encoding.UTF8.GetString(name[..nul]);
        bool printable = nul >= 0 && device.All(ch => ch is >= ' ' and < '\x7f' and not '"' and not '\\');
        if (!printable)
        {
            // A name the typed step cannot carry (no NUL within the page, or bytes no string holds): the bytes as passed.
            Step(client, "ioctl", Invariant($"fd: {FileName(group)}, request: VFIO_GROUP_GET_DEVICE_FD, arg: {ScenarioFile.Hex(name)}"),
                Expect(result, statesZero: false));
            return;
        }
        string bind = "";
        if (result >= 0 && created is not null)
        {
            string n = Bind("device_" + new string([.. device.Select(ch => char.IsAsciiLetterOrDigit(ch) ? ch : '_')]));
            _files[created] = n;
            bind = $", as: {n}";
        }
        Step(client, "get_device_fd", $"fd: {FileName(group)}, name: \"{device}\"{bind}", result < 0 ? ExpectErrno(result) : null);
    }

    /// <summary>An argsz ioctl as the model got it: <paramref name="passed"/> is the buffer with the model's fds in
    /// place of the client's, <paramref name="after"/> the buffer after the call (before the client's fds were put
    /// back), <paramref name="eventFds"/> the model eventfds the server made for it.</summary>
    public void StructIoctl(ClientProcess client, ModelFile file, uint request, byte[] passed, ReadOnlySpan<byte> after, long result,
        IReadOnlyList<int> eventFds, DirtyBitmap? bitmap)
    {
        _calls++;
        NameMemory(client, file, request, passed);
        if (bitmap is { } b)
        {
            Name(client, b.Data, b.Size);
            if (b.In is { } bytes)
            {
                string data = bytes.AsSpan().IndexOfAnyExcept((byte)0) < 0 ? Invariant($"fill: 0, size: 0x{bytes.Length:x}") : $"data: {ScenarioFile.Hex(bytes)}";
                Step(client, "write", Invariant($"vaddr: 0x{b.Data:x}, {data}"), ExpectErrno(b.InResult), "the dirty bitmap as the client passed it");
            }
        }
        if (_clients.TryGetValue(client, out Client? c))
        {
            foreach (int fd in eventFds)
            {
                string name = Bind("eventfd");
                c.EventFds[fd] = name;
                Step(client, "eventfd", $"as: {name}", null, "the client's eventfd, passed to SET_IRQS");
            }
        }
        string? typed = file.Kind == FileKind.Device ? TypedDeviceStep(client, request, passed) : null;
        byte[] written = after.ToArray();
        if (typed is null)
        {
            UnusedTail(passed, written);
        }
        // A typed step builds the struct itself (zeros past its data), so only an untyped one states the bytes.
        string expect = ExpectStruct(result, passed, written, statesBytes: typed is null);
        if (typed is not null)
        {
            Step(client, typed, $"fd: {FileName(file)}, {TypedFields(client, request, passed)}, argsz: {BinaryPrimitives.ReadUInt32LittleEndian(passed)}, buffer: {passed.Length}", expect,
                RequestName(file.Kind, request));
        }
        else
        {
            int used = passed.Length - passed.AsSpan().LastIndexOfAnyExcept((byte)0) - 1;
            string arg = used == passed.Length ? "" : $", arg: {ScenarioFile.Hex(passed.AsSpan(0, passed.Length - used))}";
            Step(client, "ioctl", Invariant($"fd: {FileName(file)}, request: {RequestName(file.Kind, request)}{arg}, buffer: {passed.Length}"), expect);
        }
        if (result < 0)
        {
            foreach (int fd in eventFds)
            {
                EventFdClosed(client, fd);
            }
        }
        if (result >= 0 && bitmap is { Out: { } got } && got.Length <= MaxStatedData)
        {
            Step(client, "read", Invariant($"vaddr: 0x{bitmap.Value.Data:x}, size: 0x{got.Length:x}"), $"expect: {{ data: {ScenarioFile.Hex(got)} }}",
                "the dirty bitmap the client got");
        }
    }

    /// <summary>A dirty bitmap's user memory: its address and size, the client's bytes the server copied into the
    /// model before the call (null when it could not read them) with the model's answer, the bytes copied back.</summary>
    public readonly record struct DirtyBitmap(ulong Data, ulong Size, byte[]? In, int InResult, byte[]? Out);

    // The client memory an ioctl's struct points at: MAP_DMA's vaddr range (type1 and sPAPR), the sPAPR
    // pre-registered range.
    private void NameMemory(ClientProcess client, ModelFile file, uint request, ReadOnlySpan<byte> s)
    {
        if (file.Kind != FileKind.Container)
        {
            return;
        }
        switch (request)
        {
            case VfioIoctl.IommuMapDma when s.Length >= 32:
                Name(client, BinaryPrimitives.ReadUInt64LittleEndian(s[8..]), BinaryPrimitives.ReadUInt64LittleEndian(s[24..]));
                break;
            // The codes are also type1's DIRTY_PAGES (and the next one's): only an sPAPR container pre-registers.
            case VfioIoctl.IommuSpaprRegisterMemory or VfioIoctl.IommuSpaprUnregisterMemory
                when s.Length >= 24 && client.Lab.ContainerOf(file.Fd)?.Backend == "spapr-tce":
                Name(client, BinaryPrimitives.ReadUInt64LittleEndian(s[8..]), BinaryPrimitives.ReadUInt64LittleEndian(s[16..]));
                break;
            default:
                break;
        }
    }

    // SET_IRQS with eventfds and PCI_HOT_RESET with group fds carry fds inside the struct: typed steps name them.
    private string? TypedDeviceStep(ClientProcess client, uint request, ReadOnlySpan<byte> s)
    {
        uint argsz = BinaryPrimitives.ReadUInt32LittleEndian(s);
        if (request == VfioIoctl.DeviceSetIrqs && s.Length >= VfioIrqSet.SizeOf)
        {
            var flags = (IrqSetFlags)BinaryPrimitives.ReadUInt32LittleEndian(s[VfioIrqSet.Offsets.Flags..]);
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(s[VfioIrqSet.Offsets.Count..]);
            bool named = (flags & IrqSetFlags.DataEventfd) != 0 && count <= (uint)(s.Length - VfioIrqSet.SizeOf) / 4 &&
                argsz >= VfioIrqSet.SizeOf + (ulong)count * 4 && !AbiNames.Format(flags).Contains("0x", StringComparison.Ordinal);
            return named && EventFdList(client, s, count) is not null ? "set_irqs" : null;
        }
        if (request == VfioIoctl.DevicePciHotReset && s.Length >= 12)
        {
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
            return 12 + ((ulong)count * 4) <= Math.Min(argsz, (uint)s.Length) && GroupList(s, count) is not null ? "pci_hot_reset" : null;
        }
        return null;
    }

    private string TypedFields(ClientProcess client, uint request, ReadOnlySpan<byte> s)
    {
        if (request == VfioIoctl.DeviceSetIrqs)
        {
            var flags = (IrqSetFlags)BinaryPrimitives.ReadUInt32LittleEndian(s[VfioIrqSet.Offsets.Flags..]);
            uint index = BinaryPrimitives.ReadUInt32LittleEndian(s[VfioIrqSet.Offsets.Index..]);
            uint start = BinaryPrimitives.ReadUInt32LittleEndian(s[VfioIrqSet.Offsets.Start..]);
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(s[VfioIrqSet.Offsets.Count..]);
            string names = flags == 0 ? "" : string.Join(", ", AbiNames.Format(flags).Split('|'));
            return Invariant($"index: {index}, start: {start}, count: {count}, flags: [{names}], eventfds: [{EventFdList(client, s, count)}]");
        }
        uint n = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
        return $"groups: [{GroupList(s, n)}]";
    }

    private string? EventFdList(ClientProcess client, ReadOnlySpan<byte> s, uint count)
    {
        if (!_clients.TryGetValue(client, out Client? c))
        {
            return null;
        }
        var items = new List<string>();
        for (int i = 0; i < count; i++)
        {
            int fd = BinaryPrimitives.ReadInt32LittleEndian(s[(VfioIrqSet.SizeOf + (i * 4))..]);
            if (fd < 0)
            {
                items.Add(Invariant($"0x{(uint)fd:x}"));
            }
            else if (c.EventFds.TryGetValue(fd, out string? name))
            {
                items.Add(name);
            }
            else
            {
                return null;
            }
        }
        return string.Join(", ", items);
    }

    private string? GroupList(ReadOnlySpan<byte> s, uint count)
    {
        var items = new List<string>();
        for (int i = 0; i < count; i++)
        {
            int fd = BinaryPrimitives.ReadInt32LittleEndian(s[(12 + (i * 4))..]);
            string? name = _files.FirstOrDefault(f => f.Key.Fd == fd && f.Key.Kind == FileKind.Group).Value;
            if (name is null)
            {
                return null;
            }
            items.Add(name);
        }
        return string.Join(", ", items);
    }

    // The bytes past argsz that the model neither read nor wrote (whatever the client's memory held there: its stack,
    // often) are zeros in the step: only the buffer's length, which decides where the model faults, is kept.
    private static void UnusedTail(byte[] passed, byte[] after)
    {
        int argsz = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(passed), (uint)passed.Length);
        if (passed.AsSpan(argsz).SequenceEqual(after.AsSpan(argsz)))
        {
            Array.Clear(passed, argsz, passed.Length - argsz);
            Array.Clear(after, argsz, after.Length - argsz);
        }
    }

    private static string ExpectStruct(long result, ReadOnlySpan<byte> passed, ReadOnlySpan<byte> after, bool statesBytes)
    {
        if (result < 0)
        {
            return ExpectErrno(result)!;
        }
        string bytes = !statesBytes || passed.SequenceEqual(after) ? "" : $", bytes: {ScenarioFile.Hex(after)}";
        return Invariant($"expect: {{ result: {result}{bytes} }}");
    }

    // ---- devices and the operator ----

    public void Dma(LabDevice device, bool write, ulong iova, ReadOnlySpan<byte> data, ulong size, bool ok)
    {
        string what = write ? $"op: write, iova: 0x{iova:x}, data: {ScenarioFile.Hex(data)}" : $"op: read, iova: 0x{iova:x}, size: 0x{size:x}";
        HostStep("dma", Invariant($"device: {device.Name}, {what}"), ok ? null : "expect: fault",
            write ? "vfiolab ctl dma (the device's write)" : "vfiolab ctl dma (the bytes came from the client's real memory: not stated)");
    }

    public void DeviceReset(ClientProcess holder, ModelFile file, long result) =>
        Step(holder, "device_reset", $"fd: {FileName(file)}", Expect(result, statesZero: false), "vfiolab ctl reset, issued as this client");

    public void HostChange(LabDevice device, string kind, int result) =>
        HostStep(kind, $"device: {device.Name}", result < 0 ? ExpectErrno(result) : null, "vfiolab ctl");

    public void Interrupt(LabDevice device, LabIrqIndex index, int vector, bool delivered) =>
        HostStep("device_interrupt", Invariant($"device: {device.Name}, index: {index.ToString().ToLowerInvariant()}, vector: {vector}"),
            $"expect: {{ delivered: {(delivered ? "true" : "false")} }}", "the device raised an interrupt");

    /// <summary>A call the server answered without the model (a client fd it could not resolve, memory it could not
    /// read): a comment, as the model never saw it.</summary>
    public void NotReached(ClientProcess client, string what, long result) =>
        NotReplayed(client, Invariant($"{what} answered {Errno(result)} by the server without reaching the model"));

    /// <summary>A call no step can state: a comment where it happened.</summary>
    public void NotReplayed(ClientProcess client, string what)
    {
        string name = _clients.TryGetValue(client, out Client? c) ? c.Name : $"pid {client.Pid}";
        Comment($"{name}: {what}: not replayed");
    }

    /// <summary>What the client got differs from the model's answer the step before states (the server could not
    /// copy the answer out): a comment after that step.</summary>
    public void ClientGotOther(ClientProcess client, string what)
    {
        string name = _clients.TryGetValue(client, out Client? c) ? c.Name : $"pid {client.Pid}";
        Comment($"{name}: the step above is the model's answer; the client got EFAULT ({what})");
    }

    // ---- text ----

    private void Step(ClientProcess client, string kind, string fields, string? expect, string? comment = null)
    {
        if (!_clients.TryGetValue(client, out Client? c))
        {
            return;
        }
        if (comment is not null)
        {
            Comment(comment);
        }
        string body = fields.Length == 0 ? $"process: {c.Name}" : $"process: {c.Name}, {fields}";
        _steps.Add($"  - {kind}: {{ {body}{(expect is null ? "" : ", " + expect)} }}");
        StepCount++;
    }

    private void HostStep(string kind, string fields, string? expect, string? comment)
    {
        if (comment is not null)
        {
            Comment(comment);
        }
        _steps.Add($"  - {kind}: {{ {fields}{(expect is null ? "" : ", " + expect)} }}");
        StepCount++;
    }

    private void Comment(string text) => _steps.Add("  # " + ScenarioFile.Clean(text));

    private string FileName(ModelFile file) => _files.TryGetValue(file, out string? name) ? name : Invariant($"{file.Fd}");

    private string Bind(string prefix)
    {
        // container1, client2; a prefix ending in a number is a name of its own first: group2, then group2_2.
        bool numbered = char.IsAsciiDigit(prefix[^1]);
        for (int i = 1; ; i++)
        {
            string name = !numbered ? Invariant($"{prefix}{i}") : i == 1 ? prefix : Invariant($"{prefix}_{i}");
            if (_taken.Add(name))
            {
                return name;
            }
        }
    }

    // The request's name on this kind of file (a container's 0x3b71 is MAP_DMA, a device's GET_PCI_HOT_RESET_INFO).
    private static string RequestName(FileKind kind, uint request) =>
        ServeServer.NamesOn(kind, request) is { Length: > 0 } names ? names[0] : Invariant($"0x{request:x}");

    private static string Errno(long result) => ErrnoExtensions.FromReturn(result).ToString();

    private static string? ExpectErrno(long result) => result < 0 ? $"expect: {Errno(result)}" : null;

    // An errno, or the result: stated when it is not 0 or when the call's result means something even at 0.
    private static string? Expect(long result, bool statesZero) =>
        result < 0 ? ExpectErrno(result) : result != 0 || statesZero ? Invariant($"expect: {{ result: {result} }}") : null;

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
