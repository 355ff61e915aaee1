using System.Buffers.Binary;
using System.Globalization;
using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Fuzzing;

// One sequence in progress: the model's host and processes, the reference, who holds which group fd
// (host-level file semantics both sides share), and the scenario steps that replay what ran.
internal sealed partial class DifferentialCampaign
{
    private sealed partial class Execution
    {
        // The rig's first two opens, after stdin, stdout and stderr (fds 0-2): the container, then group 1.
        private const int ContainerFd = 3;
        private const int FirstGroupFd = ContainerFd + 1;
        private readonly LabHost _host;
        private readonly LabProcess _parent;
        private readonly Type1Reference _reference;
        private readonly FuzzFigures _figures;
        private readonly Dictionary<int, int> _parentGroupFds = [];
        private readonly HashSet<int> _childHolds = [];
        private readonly LabDevice _mdev;
        // The PCI device of each IOMMU-backed group, whose domain the comparison reads.
        private readonly Dictionary<int, LabDevice> _groupDevices = [];
        private int _mdevFd = -1;
        private bool _childMdevFd;
        private LabProcess? _child;

        public Execution(string profile, bool v2, FuzzFigures figures, bool strict, int runPages)
        {
            _host = RigScenario.Run(DifferentialRig.ScenarioText(profile, v2, "differential-rig", strict, runPages), "differential-rig.yaml",
                checkInvariants: false, "differential rig");
            _parent = _host.Process("vmm");
            _reference = new Type1Reference(v2, PfnOf, Alive, DifferentialRig.MemlockPages)
            {
                DeviceNotifier = profile == KernelProfiles.Seeds,
                StrictMmioMaps = strict,
                BarProcess = _parent.Pid,
                BarPfn = _host.Device("gpu").BarAddress(0)!.Value >> 12,
            };
            _figures = figures;
            _parentGroupFds[1] = FirstGroupFd;
            _mdev = _host.Device("mdev");
            foreach (LabDevice d in _host.Devices)
            {
                if (!d.IsMediated)
                {
                    _groupDevices.TryAdd(d.IommuGroup, d);
                }
            }
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
                RefOpKind.Dma => Dma(op),
                RefOpKind.MdevAttach => MdevAttach(),
                RefOpKind.MdevDetach => Detach(Type1Reference.MdevGroup),
                RefOpKind.GpuAttach => Attach(1),
                RefOpKind.GpuDetach => (_gpuFd >= 0 && _parentGroupFds.ContainsKey(1) ? DeviceRelease() : null) ?? Detach(1),
                RefOpKind.Pin => Pin(op),
                RefOpKind.Unpin => Unpin(op),
                RefOpKind.UnmapVaddr => UnmapVaddr(op),
                RefOpKind.MapVaddr => MapVaddr(op),
                RefOpKind.UpdateVaddrExtension => UpdateVaddrExtension(),
                RefOpKind.BarOpen => BarOpen(),
                RefOpKind.DeviceRelease => DeviceRelease(),
                RefOpKind.DeferredWork => RunDeferredWork(),
                RefOpKind.Decode => Decode(op),
                RefOpKind.Reset => Reset(op),
                _ => DmaRw(op),
            };
            return problem ?? CompareState();
        }

        private string? Map(RefOp op)
        {
            ulong iova = Iovas[op.A % Iovas.Length];
            // D from 48: the BAR's mmap (its first byte, or its middle for D / 6 == 9), else the fixed table.
            ulong vaddr = op.D >= 48 ? VaddrChoice(Vaddrs.Length + ((op.D / 6) == 9 ? 1 : 0)) : Vaddrs[op.B % Vaddrs.Length];
            LabProcess p = op.D % 2 == 1 && ChildAlive && !IsBar(vaddr) ? _child! : _parent;
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
            long expected = _reference.Map(p.Pid, iova, vaddr, size, read, write);
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
            (long expected, ulong expectedSize) = _reference.Unmap(iova, size, all, null, 0);
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
            (long expected, ulong expectedSize) = _reference.Unmap(iova, size, false, expectedBits, pgsize);
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
            bool held = Attached(group);
            int fd = _parent.Syscalls.Open($"/dev/vfio/{group}");
            Step($"open: {{ path: /dev/vfio/{group}, as: g{group}, expect: {Expect(fd)} }}");
            if (held || fd < 0)
            {
                return Results("open-group", fd, held ? Errno.EBUSY.AsReturn() : 0);
            }
            Span<byte> arg = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(arg, ContainerFd);
            long ret = _parent.Syscalls.Ioctl(fd, VfioIoctl.GroupSetContainer, arg);
            long expected = _reference.Attach(group, _parent.Pid);
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

        // The mdev's group joins the container and its device is opened (the vendor driver registers for unmap
        // notifications); the device fd holds the group, so both are closed together.
        private string? MdevAttach()
        {
            const int group = Type1Reference.MdevGroup;
            bool before = _parentGroupFds.ContainsKey(group);
            string? problem = Attach(group);
            if (problem is not null || before || !_parentGroupFds.TryGetValue(group, out int gfd))
            {
                return problem;
            }
            byte[] name = [.. System.Text.Encoding.UTF8.GetBytes(DifferentialRig.MdevUuid), 0];
            long fd = _parent.Syscalls.Ioctl(gfd, VfioIoctl.GroupGetDeviceFd, name);
            Step($"get_device_fd: {{ fd: g{group}, name: \"{DifferentialRig.MdevUuid}\", as: d{group}, expect: {Expect(fd)} }}");
            if (fd >= 0)
            {
                _mdevFd = (int)fd;
            }
            return Results("mdev-open", fd >= 0 ? 0 : fd, 0);
        }

        // Closing the parent's fd of a group; skipped when it would leave the container without any group (the
        // container would lose its backend, which the reference does not model).
        private string? Detach(int group)
        {
            if (!_parentGroupFds.TryGetValue(group, out int fd))
            {
                return null;
            }
            bool childKeeps = ChildAlive && _childHolds.Contains(group);
            if (!childKeeps && !new[] { 1, 2, 3, Type1Reference.MdevGroup }.Any(g => g != group && Attached(g)))
            {
                return null;
            }
            _parentGroupFds.Remove(group);
            if (group == Type1Reference.MdevGroup && _mdevFd >= 0)
            {
                _parent.Syscalls.Close(_mdevFd);
                Step($"close: {{ fd: d{group} }}");
                _mdevFd = -1;
                if (!childKeeps)
                {
                    _reference.MdevRelease();
                }
            }
            long ret = _parent.Syscalls.Close(fd);
            Step($"close: {{ fd: g{group} }}");
            bool hadDomain = _reference.HasDomain;
            if (!childKeeps)
            {
                _reference.Detach(group);
            }
            return Results(hadDomain && !_reference.HasDomain ? "close-group-reaccount" : "close-group", ret, 0);
        }

        private string? Fork()
        {
            if (ChildAlive)
            {
                return null;
            }
            Errno e = _parent.TryFork(out LabProcess? child);
            Step("fork: { as: child }");
            if (e != Errno.None)
            {
                return $"fork failed with {e}";
            }
            _child = child;
            _childHolds.Clear();
            _childHolds.UnionWith(_parentGroupFds.Keys);
            _childMdevFd = _mdevFd >= 0;
            return null;
        }

        // The child's exit closes its fds; skipped when that would leave the container without any group.
        private string? ChildExit()
        {
            if (!ChildAlive)
            {
                return null;
            }
            List<int> leaving = [.. _childHolds.Where(g => !_parentGroupFds.ContainsKey(g)).Order()];
            if (!_parentGroupFds.Keys.Any() && leaving.Count > 0)
            {
                return null;
            }
            _child!.Exit();
            Step("exit: { process: child }");
            if (_childMdevFd && _mdevFd < 0)
            {
                _reference.MdevRelease();
            }
            foreach (int g in leaving)
            {
                _reference.Detach(g);
            }
            _childHolds.Clear();
            _childMdevFd = false;
            return null;
        }

        private bool Attached(int group) => _parentGroupFds.ContainsKey(group) || (ChildAlive && _childHolds.Contains(group));

        private bool MdevOpen => _mdevFd >= 0 || (ChildAlive && _childMdevFd);

        // vfio_pin_pages by the mdev's vendor driver: iova A + B pages, count C, prot D (rw, r, w).
        private void ZeroBitmap(int words) => _parent.Syscalls.WriteMemory(DifferentialRig.Bitmap, new byte[words * 8]);

        private LabContainer Container() => _parent.ContainerOf(ContainerFd)!;

        private bool Alive(int pid) => pid == _parent.Pid || (ChildAlive && pid == _child!.Pid);

        private void Step(string text) => Steps.Add("  - " + text);

        private string ProcessField(LabProcess p) => ReferenceEquals(p, _parent) ? string.Empty : ", process: child";

        // The frame at vaddr in pid's page table (MaxValue when none or the process is gone).
        private ulong PfnOf(int pid, ulong vaddr)
        {
            LabProcess? p = pid == _parent.Pid ? _parent : ChildAlive && pid == _child!.Pid ? _child : null;
            return p?.FrameAt(vaddr) ?? ulong.MaxValue;
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
