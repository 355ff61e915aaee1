using System.Buffers.Binary;
using System.Globalization;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;
using VfioLab.Scenarios.Running;
using VfioLab.Simulation;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Fuzzing;

// One sequence in progress: the model's host and processes, the reference, who holds which group fd
// (host-level file semantics both sides share), and the scenario steps that replay what ran.
internal sealed partial class DifferentialCampaign
{
    private sealed class Execution
    {
        private const int ContainerFd = 0;
        private readonly SimulatedHost _host;
        private readonly Process _parent;
        private readonly Type1Reference _reference;
        private readonly FuzzFigures _figures;
        private readonly Dictionary<int, int> _parentGroupFds = [];
        private readonly HashSet<int> _childHolds = [];
        private Process? _child;

        public Execution(string profile, bool v2, FuzzFigures figures)
        {
            ScenarioDocument doc = ScenarioParser.Parse(DifferentialRig.ScenarioText(profile, v2, "differential-rig"), "differential-rig.yaml");
            var session = new ScenarioSession(doc, new RunOptions { CheckInvariants = false });
            for (int i = 0; i < doc.Steps.Count; i++)
            {
                StepReport r = session.Execute(i);
                if (!r.Passed)
                {
                    throw new InvalidOperationException($"differential rig step {i + 1} failed: {string.Join("; ", r.Problems)}");
                }
            }
            _host = session.Host;
            _parent = _host.Machine.Processes[0];
            _reference = new Type1Reference(v2);
            _figures = figures;
        }

        /// <summary>The scenario steps of every operation applied so far.</summary>
        public List<string> Steps { get; } = [];

        private bool ChildAlive => _child is { IsAlive: true };

        public IEnumerable<string> AsSteps(RefOp op)
        {
            int before = Steps.Count;
            Apply(op);
            return Steps.Skip(before).ToList();
        }

        /// <summary>Applies one operation to both sides; returns the first discrepancy or null.</summary>
        public string? Apply(RefOp op)
        {
            string? problem = op.Kind switch
            {
                RefOpKind.Map => Map(op),
                RefOpKind.Unmap => Unmap(op),
                RefOpKind.UnmapDirty => UnmapDirty(op),
                RefOpKind.DirtyStart or RefOpKind.DirtyStop => DirtyStartStop(op.Kind == RefOpKind.DirtyStart ? 1u : 2u),
                RefOpKind.DirtyGet => DirtyGet(op),
                RefOpKind.Attach => Attach(2 + (op.A % 2)),
                RefOpKind.Detach => Detach(2 + (op.A % 2)),
                RefOpKind.Fork => Fork(),
                RefOpKind.ChildExit => ChildExit(),
                _ => Dma(op),
            };
            return problem ?? CompareState();
        }

        private string? Map(RefOp op)
        {
            Process p = op.D % 2 == 1 && ChildAlive ? _child! : _parent;
            ulong iova = Iovas[op.A % Iovas.Length];
            ulong vaddr = Vaddrs[op.B % Vaddrs.Length];
            ulong size = Sizes[op.C % Sizes.Length];
            (DmaMapFlags flags, bool read, bool write, string names) = ((op.D / 2) % 3) switch
            {
                0 => (DmaMapFlags.Read | DmaMapFlags.Write, true, true, "READ, WRITE"),
                1 => (DmaMapFlags.Read, true, false, "READ"),
                _ => (DmaMapFlags.Write, false, true, "WRITE"),
            };
            Span<byte> buf = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
            new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = flags, Vaddr = vaddr, Iova = iova, Size = size }.Write(buf);
            long ret = p.Syscalls.Ioctl(ContainerFd, VfioIoctl.IommuMapDma, buf);
            long expected = _reference.Map(p.Pid, iova, vaddr, size, read, write, DifferentialRig.MemlockPages, v => PfnOf(p, v));
            Step($"map_dma: {{ fd: {ContainerFd}, iova: 0x{iova:x}, vaddr: 0x{vaddr:x}, size: 0x{size:x}, flags: [{names}]{ProcessField(p)}, expect: {Expect(ret)} }}");
            return Results("map", ret, expected);
        }

        private string? Unmap(RefOp op)
        {
            bool all = op.D % 2 == 1;
            ulong iova = all ? 0 : Iovas[op.A % Iovas.Length];
            ulong size = all ? 0 : Sizes[op.C % Sizes.Length];
            Span<byte> buf = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
            new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Flags = all ? DmaUnmapFlags.All : DmaUnmapFlags.None, Iova = iova, Size = size }.Write(buf);
            long ret = _parent.Syscalls.Ioctl(ContainerFd, VfioIoctl.IommuUnmapDma, buf);
            VfioIommuType1DmaUnmap.TryRead(buf, out VfioIommuType1DmaUnmap back);
            (long expected, ulong expectedSize) = _reference.Unmap(iova, size, all, null, 0, Alive);
            Step($"unmap_dma: {{ fd: {ContainerFd}, iova: 0x{iova:x}, size: 0x{size:x}{(all ? ", flags: [ALL]" : string.Empty)}, expect: {(ret == 0 ? $"{{ size: 0x{back.Size:x} }}" : Expect(ret))} }}");
            return Results("unmap" + (all ? "-all" : string.Empty), ret, expected)
                ?? (ret == 0 && back.Size != expectedSize ? $"unmap wrote back size 0x{back.Size:x}, the reference 0x{expectedSize:x}" : null);
        }

        private string? UnmapDirty(RefOp op)
        {
            ulong iova = Iovas[op.A % Iovas.Length];
            ulong size = Sizes[op.C % Sizes.Length];
            ulong pgsize = op.B % 2 == 0 ? _reference.PageSize : 0x11000 - _reference.PageSize;
            int words = Words(size, pgsize);
            ZeroBitmap(words);
            byte[] buf = new byte[48];
            BinaryPrimitives.WriteUInt32LittleEndian(buf, 48);
            BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(4), (uint)DmaUnmapFlags.GetDirtyBitmap);
            WriteU64s(buf, 8, iova, size, pgsize, (ulong)words * 8, DifferentialRig.Bitmap);
            long ret = _parent.Syscalls.Ioctl(ContainerFd, VfioIoctl.IommuUnmapDma, buf);
            ulong backSize = BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(16));
            ulong[] expectedBits = new ulong[words];
            (long expected, ulong expectedSize) = _reference.Unmap(iova, size, false, expectedBits, pgsize, Alive);
            Step($"unmap_dma: {{ fd: {ContainerFd}, iova: 0x{iova:x}, size: 0x{size:x}, flags: [GET_DIRTY_BITMAP], bitmap: {{ pgsize: 0x{pgsize:x}, vaddr: 0x{DifferentialRig.Bitmap:x}, size: 0x{words * 8:x} }}, expect: {(ret == 0 ? $"{{ size: 0x{backSize:x} }}" : Expect(ret))} }}");
            return Results("unmap-dirty", ret, expected)
                ?? (ret == 0 && backSize != expectedSize ? $"unmap wrote back size 0x{backSize:x}, the reference 0x{expectedSize:x}" : null)
                ?? (ret == 0 ? CompareBitmap(words, expectedBits) : null);
        }

        private string? DirtyStartStop(uint flag)
        {
            byte[] buf = new byte[8];
            BinaryPrimitives.WriteUInt32LittleEndian(buf, 8);
            BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(4), flag);
            long ret = _parent.Syscalls.Ioctl(ContainerFd, VfioIoctl.IommuDirtyPages, buf);
            long expected = _reference.Dirty(flag, 0, 0, null, 0);
            Step($"dirty_pages: {{ fd: {ContainerFd}, op: {(flag == 1 ? "start" : "stop")}, expect: {Expect(ret)} }}");
            return Results(flag == 1 ? "dirty-start" : "dirty-stop", ret, expected);
        }

        private string? DirtyGet(RefOp op)
        {
            ulong iova = Iovas[op.A % Iovas.Length];
            ulong size = Sizes[op.C % Sizes.Length];
            ulong pgsize = op.B % 2 == 0 ? _reference.PageSize : 0x11000 - _reference.PageSize;
            int words = Words(size, pgsize);
            ZeroBitmap(words);
            byte[] buf = new byte[48];
            BinaryPrimitives.WriteUInt32LittleEndian(buf, 48);
            BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(4), 4);
            WriteU64s(buf, 8, iova, size, pgsize, (ulong)words * 8, DifferentialRig.Bitmap);
            long ret = _parent.Syscalls.Ioctl(ContainerFd, VfioIoctl.IommuDirtyPages, buf);
            ulong[] expectedBits = new ulong[words];
            long expected = _reference.Dirty(4, iova, size, expectedBits, pgsize);
            Step($"dirty_pages: {{ fd: {ContainerFd}, op: get_bitmap, iova: 0x{iova:x}, size: 0x{size:x}, bitmap: {{ pgsize: 0x{pgsize:x}, vaddr: 0x{DifferentialRig.Bitmap:x}, size: 0x{words * 8:x} }}, expect: {Expect(ret)} }}");
            return Results("dirty-get", ret, expected) ?? (ret == 0 ? CompareBitmap(words, expectedBits) : null);
        }

        private string? Attach(int group)
        {
            bool held = _parentGroupFds.ContainsKey(group) || (ChildAlive && _childHolds.Contains(group));
            int fd = _parent.Syscalls.Open($"/dev/vfio/{group}");
            Step($"open: {{ path: /dev/vfio/{group}, as: g{group}, expect: {Expect(fd)} }}");
            if (held || fd < 0)
            {
                return Results("open-group", fd, held ? Errno.EBUSY.AsReturn() : 0);
            }
            Span<byte> arg = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(arg, ContainerFd);
            long ret = _parent.Syscalls.Ioctl(fd, VfioIoctl.GroupSetContainer, arg);
            long expected = _reference.Attach(group);
            Step($"group_set_container: {{ fd: g{group}, container: {ContainerFd}, expect: {Expect(ret)} }}");
            if (ret == 0)
            {
                _parentGroupFds[group] = fd;
            }
            else
            {
                _parent.Syscalls.Close(fd);
                Step($"close: {{ fd: g{group} }}");
                if (expected == 0)
                {
                    _reference.Detach(group);
                }
            }
            return Results($"attach-group-{group}", ret, expected);
        }

        private string? Detach(int group)
        {
            if (!_parentGroupFds.Remove(group, out int fd))
            {
                return null;
            }
            long ret = _parent.Syscalls.Close(fd);
            Step($"close: {{ fd: g{group} }}");
            if (!(ChildAlive && _childHolds.Contains(group)))
            {
                _reference.Detach(group);
            }
            return Results("close-group", ret, 0);
        }

        private string? Fork()
        {
            if (ChildAlive)
            {
                return null;
            }
            Errno e = _parent.TryFork(out Process? child);
            Step("fork: { as: child }");
            if (e != Errno.None)
            {
                return $"fork failed with {e}";
            }
            _child = child;
            _childHolds.Clear();
            _childHolds.UnionWith(_parentGroupFds.Keys);
            return null;
        }

        private string? ChildExit()
        {
            if (!ChildAlive)
            {
                return null;
            }
            _child!.Exit();
            Step("exit: { process: child }");
            foreach (int g in _childHolds)
            {
                if (!_parentGroupFds.ContainsKey(g))
                {
                    _reference.Detach(g);
                }
            }
            _childHolds.Clear();
            return null;
        }

        private string? Dma(RefOp op)
        {
            ulong baseIova = Iovas[op.A % Iovas.Length];
            ulong offset = (ulong)(op.B % 16) * 0x1000;
            ulong iova = baseIova + offset < baseIova ? baseIova : baseIova + offset;
            bool write = op.D % 2 == 1;
            SimulatedDevice gpu = _host.Devices["gpu"];
            DeviceDmaResult r = write
                ? DeviceDma.Write(_host, gpu, new Iova(iova), [1, 2, 3, 4, 5, 6, 7, 8])
                : DeviceDma.Read(_host, gpu, new Iova(iova), 8);
            bool expected = iova <= ulong.MaxValue - 7 && _reference.DmaCompletes(iova, write);
            Step($"dma: {{ device: gpu, op: {(write ? "write" : "read")}, iova: 0x{iova:x}, {(write ? "data: \"0102030405060708\"" : "size: 8")}, expect: {(r.Ok ? "ok" : "fault")} }}");
            _figures.Reached(write ? "dma-write" : "dma-read", r.Ok ? 0 : -14);
            return r.Ok == expected ? null : $"device DMA {(write ? "write" : "read")} at 0x{iova:x}: the model {(r.Ok ? "completed" : "faulted")}, the reference {(expected ? "completes" : "faults")}";
        }

        // locked_vm of every live process, the mapping count, every frame's pins, every page's translation in every domain.
        private string? CompareState()
        {
            foreach (Process? p in new[] { _parent, ChildAlive ? _child : null })
            {
                if (p is not null && (long)p.LastMm.LockedVm != _reference.LockedVm.GetValueOrDefault(p.Pid))
                {
                    return $"locked_vm of pid {p.Pid}: the model 0x{p.LastMm.LockedVm:x} pages, the reference 0x{_reference.LockedVm.GetValueOrDefault(p.Pid):x}";
                }
            }
            VfioIommu backend = Backend();
            if (backend.MappingCount != (ulong)_reference.Mappings.Count)
            {
                return $"mappings: the model {backend.MappingCount}, the reference {_reference.Mappings.Count}";
            }
            Dictionary<ulong, ulong> pins = _reference.Pins();
            PhysicalMemory mem = _host.Machine.Memory;
            ulong total = 0;
            foreach ((ulong pfn, ulong count) in pins)
            {
                total += count;
                if (mem.PinCount(new Pfn(pfn)) != count)
                {
                    return $"pins of pfn 0x{pfn:x}: the model {mem.PinCount(new Pfn(pfn))}, the reference {count}";
                }
            }
            if (mem.TotalPins != total)
            {
                return $"total pins: the model {mem.TotalPins}, the reference {total}";
            }
            foreach (int g in _reference.Groups)
            {
                IommuDomain? d = _host.IommuGroups[g].Domain;
                if (d is null)
                {
                    return $"group {g} is attached in the reference but has no domain in the model";
                }
                ulong mapped = 0;
                foreach (MappedRun run in d.MappedRuns())
                {
                    mapped += run.Iova.Last - run.Iova.Start + 1;
                }
                ulong expectedBytes = 0;
                foreach (Type1Reference.Mapping m in _reference.Mappings.Values)
                {
                    expectedBytes += m.Size;
                    for (int i = 0; i < m.Pfns.Length; i++)
                    {
                        ulong iova = m.Iova + ((ulong)i * 0x1000);
                        ulong phys = d.IovaToPhys(new Iova(iova)).Value;
                        if (phys != m.Pfns[i] * 0x1000)
                        {
                            return $"group {g}'s domain translates 0x{iova:x} to 0x{phys:x}, the reference to 0x{m.Pfns[i] * 0x1000:x}";
                        }
                    }
                }
                if (mapped != expectedBytes)
                {
                    return $"group {g}'s domain maps 0x{mapped:x} bytes, the reference 0x{expectedBytes:x}";
                }
            }
            return null;
        }

        private string? Results(string what, long ret, long expected)
        {
            _figures.Reached(what, ret);
            return ret == expected ? null : $"{what}: the model returned {Describe(ret)}, the reference {Describe(expected)}";
        }

        private string? CompareBitmap(int words, ulong[] expected)
        {
            byte[] bytes = new byte[words * 8];
            _parent.Syscalls.ReadMemory(DifferentialRig.Bitmap, bytes);
            for (int w = 0; w < words; w++)
            {
                ulong actual = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(w * 8));
                if (actual != expected[w])
                {
                    return $"dirty bitmap word {w}: the model 0x{actual:x16}, the reference 0x{expected[w]:x16}";
                }
            }
            return null;
        }

        private void ZeroBitmap(int words) => _parent.Syscalls.WriteMemory(DifferentialRig.Bitmap, new byte[words * 8]);

        private VfioIommu Backend()
        {
            _parent.Fds.TryGet(ContainerFd, out OpenFile file);
            file.Put();
            return (VfioIommu)((VfioContainerFile)file.Operations).Container.Iommu!;
        }

        private bool Alive(int pid) => pid == _parent.Pid || (ChildAlive && pid == _child!.Pid);

        private void Step(string text) => Steps.Add("  - " + text);

        private string ProcessField(Process p) => ReferenceEquals(p, _parent) ? string.Empty : ", process: child";

        private static ulong PfnOf(Process p, ulong vaddr)
        {
            AddressSpace mm = p.LastMm;
            mm.MmapReadLock();
            try
            {
                return mm.TryTranslateLocked(new HostVirtAddr(vaddr), out Pte pte) ? pte.Pfn.Value : ulong.MaxValue;
            }
            finally
            {
                mm.MmapReadUnlock();
            }
        }

        // One bit per bitmap page of the range, in u64 words; at least one word so a bad size still has a buffer.
        private static int Words(ulong size, ulong pgsize)
        {
            ulong bits = size / pgsize;
            return (int)Math.Clamp((bits + 63) / 64, 1, 64);
        }

        private static void WriteU64s(byte[] buf, int at, params ulong[] values)
        {
            for (int i = 0; i < values.Length; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(at + (i * 8)), values[i]);
            }
        }

        private static string Expect(long ret) => ret >= 0 ? "ok" : ErrnoExtensions.FromReturn(ret).ToString();

        private static string Describe(long ret) => ret >= 0 ? ret.ToString(CultureInfo.InvariantCulture) : ErrnoExtensions.FromReturn(ret).ToString();
    }
}
