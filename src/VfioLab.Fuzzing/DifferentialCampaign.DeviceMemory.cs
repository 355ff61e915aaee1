using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Fuzzing;

// Device memory and resets on both sides: the GPU's device fd and BAR0 mmap, memory decode, the device's
// release and the deferred work it queues (seeds), the slot's hot reset and the function reset.
internal sealed partial class DifferentialCampaign
{
    private sealed partial class Execution
    {
        private const string GpuAddress = "0000:01:00.0";

        // A user address no mapping of the rig covers, used for the BAR before the device was ever opened.
        private const ulong NoBar = 0x7000_0000;

        private int _gpuFd = -1;

        /// <summary>Vaddr table entry <paramref name="index"/>: the fixed addresses, then the BAR's first byte and its middle.</summary>
        private ulong VaddrChoice(int index)
        {
            int i = index % (Vaddrs.Length + 2);
            if (i < Vaddrs.Length)
            {
                return Vaddrs[i];
            }
            ulong bar = _reference.BarVaddr ?? NoBar;
            return i == Vaddrs.Length ? bar : bar + (Type1Reference.BarSize / 2);
        }

        // Only the VMM maps a range that may reach the BAR (sizes go to 2 MiB): the reference does not track the
        // child's copy of an older mmap of it.
        private bool IsBar(ulong vaddr) => _reference.BarVaddr is ulong bar && vaddr >= bar - Math.Min(bar, 4 * MiB) && vaddr < bar + (4 * MiB);

        // The VMM opens the GPU's device through its group and mmaps BAR0 (the mmap of an earlier, released
        // open is unmapped first, so the VMM keeps one).
        private string? BarOpen()
        {
            if (_gpuFd >= 0 || !_parentGroupFds.TryGetValue(1, out int gfd))
            {
                return null;
            }
            if (_reference.BarVaddr is ulong old)
            {
                long un = _parent.Syscalls.Munmap(old, Type1Reference.BarSize);
                Step($"munmap: {{ vaddr: 0x{old:x}, size: 0x{Type1Reference.BarSize:x}, expect: {Expect(un)} }}");
            }
            byte[] name = [.. System.Text.Encoding.UTF8.GetBytes(GpuAddress), 0];
            long fd = _parent.Syscalls.Ioctl(gfd, VfioIoctl.GroupGetDeviceFd, name);
            Step($"get_device_fd: {{ fd: g1, name: \"{GpuAddress}\", as: d1, expect: {Expect(fd)} }}");
            if (fd < 0)
            {
                return Results("gpu-open", fd, 0);
            }
            _gpuFd = (int)fd;
            long vaddr = _parent.Syscalls.Mmap(0, Type1Reference.BarSize, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared,
                _gpuFd, VfioPci.IndexToOffset(0u));
            Step($"mmap_region: {{ device_fd: d1, index: 0, size: 0x{Type1Reference.BarSize:x}, expect: {(vaddr >= 0 ? $"{{ vaddr: 0x{vaddr:x} }}" : Expect(vaddr))} }}");
            if (vaddr < 0)
            {
                return Results("bar-mmap", vaddr, 0);
            }
            _reference.BarOpened((ulong)vaddr);
            return Results("bar-mmap", 0, 0);
        }

        // device_release: every file of the GPU's device closed, in every process, its mmaps revoked.
        private string? DeviceRelease()
        {
            if (_gpuFd < 0)
            {
                return null;
            }
            int closed = _host.Device("gpu").Release();
            Step("device_release: { device: gpu }");
            _gpuFd = -1;
            int held = _reference.DeviceHolders.Count();
            _reference.DeviceReleased();
            return Results(held > 0 ? "device-release-held" : "device-release", closed > 0 ? 0 : Errno.EBADF.AsReturn(), 0);
        }

        private string? RunDeferredWork()
        {
            int ran = _host.RunDeferredWork();
            int expected = _reference.RunDeferredWork();
            Step($"run_deferred_work: {{ expect: {{ ran: {ran} }} }}");
            return Results("run-deferred-work-" + ran, ran, expected);
        }

        // PCI_COMMAND's memory bit written through the device fd's config region, as QEMU does.
        private string? Decode(RefOp op)
        {
            if (_gpuFd < 0)
            {
                return null;
            }
            bool on = op.D % 2 == 1;
            ulong offset = VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + 4;
            byte[] cmd = new byte[2];
            long ret = _parent.Syscalls.Pread(_gpuFd, cmd, offset);
            if (ret >= 0)
            {
                ushort value = BinaryPrimitives.ReadUInt16LittleEndian(cmd);
                BinaryPrimitives.WriteUInt16LittleEndian(cmd, on ? (ushort)(value | 0x2) : (ushort)(value & ~0x2));
                ret = _parent.Syscalls.Pwrite(_gpuFd, cmd, offset);
            }
            Step($"pci_command: {{ fd: d1, memory: {(on ? "true" : "false")}, expect: {Expect(ret)} }}");
            _reference.SetDecode(on);
            return Results(on ? "decode-on" : "decode-off", ret < 0 ? ret : 0, 0);
        }

        // VFIO_DEVICE_PCI_HOT_RESET of the GPU's slot with its group's fd (B even), or VFIO_DEVICE_RESET: the BAR
        // mmaps are zapped (the next CPU access faults them back in), decode is saved and restored, type1 is
        // left alone. EBUSY only from a contended memory_lock, which a single thread cannot meet.
        private string? Reset(RefOp op)
        {
            if (_gpuFd < 0 || !_parentGroupFds.TryGetValue(1, out int gfd))
            {
                return null;
            }
            IReadOnlyList<LabMapping> before = Container().Mappings;
            long ret;
            if (op.B % 2 == 0)
            {
                byte[] arg = new byte[VfioPciHotReset.SizeOf + 4];
                BinaryPrimitives.WriteUInt32LittleEndian(arg, (uint)arg.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(arg.AsSpan(VfioPciHotReset.Offsets.Count), 1);
                BinaryPrimitives.WriteInt32LittleEndian(arg.AsSpan(VfioPciHotReset.Offsets.GroupFds), gfd);
                ret = _parent.Syscalls.Ioctl(_gpuFd, VfioIoctl.DevicePciHotReset, arg);
                Step($"pci_hot_reset: {{ fd: d1, groups: [g1], expect: {Expect(ret)} }}");
            }
            else
            {
                ret = _parent.Syscalls.Ioctl(_gpuFd, VfioIoctl.DeviceReset, 0UL);
                Step($"device_reset: {{ fd: d1, expect: {Expect(ret)} }}");
            }
            IReadOnlyList<LabMapping> after = Container().Mappings;
            bool same = before.Count == after.Count && before.Zip(after)
                .All(p => p.First.Iova == p.Second.Iova && p.First.Size == p.Second.Size && p.First.IommuMapped == p.Second.IommuMapped && p.First.LockedPages == p.Second.LockedPages);
            return Results(op.B % 2 == 0 ? "pci-hot-reset" : "device-reset", ret, 0)
                ?? (same ? null : "a reset changed type1's mappings");
        }

        private string? Dma(RefOp op)
        {
            ulong baseIova = Iovas[op.A % Iovas.Length];
            ulong offset = (ulong)(op.B % 16) * 0x1000;
            ulong iova = baseIova + offset < baseIova ? baseIova : baseIova + offset;
            bool write = op.D % 2 == 1;
            // Three times in four the GPU, else the NIC (group 2): peer to peer when the IOVA reaches the GPU's BAR.
            (string name, int group) = op.C % 4 == 3 ? ("nic", 2) : ("gpu", 1);
            LabDevice device = _host.Device(name);
            LabDmaResult r = write ? device.DmaWrite(iova, [1, 2, 3, 4, 5, 6, 7, 8]) : device.DmaRead(iova, 8);
            bool expected = iova <= ulong.MaxValue - 7 && _reference.DmaCompletes(group, iova, write);
            Step($"dma: {{ device: {name}, op: {(write ? "write" : "read")}, iova: 0x{iova:x}, {(write ? "data: \"0102030405060708\"" : "size: 8")}, expect: {(r.Ok ? "ok" : "fault")} }}");
            Type1Reference.Mapping? m = _reference.Find(iova);
            bool peer = m is { IommuMapped: true } && _reference.IsBarFrame(m.Pfns[m.PageOf(iova)]);
            _figures.Reached((write ? "dma-write" : "dma-read") + (peer ? "-p2p" : string.Empty) + (group == 2 ? "-nic" : string.Empty), r.Ok ? 0 : -14);
            return r.Ok == expected ? null : $"{name} DMA {(write ? "write" : "read")} at 0x{iova:x}: the model {(r.Ok ? "completed" : "faulted")}, the reference {(expected ? "completes" : "faults")}";
        }

        // Seeds: the devices the container holds, with the mappings that reach each, against the reference.
        private string? CompareDeviceHolds(LabContainer container)
        {
            IReadOnlyList<LabDeviceHold> holds = container.DeviceHolds;
            int releasing = holds.Count(p => p.Releasing);
            string model = string.Join(", ", holds.Where(p => !p.Releasing).SelectMany(p => p.MappingIovas).Order().Select(i => $"0x{i:x}"));
            string expected = string.Join(", ", _reference.DeviceHolders.Order().Select(i => $"0x{i:x}"));
            if (model != expected)
            {
                return $"mappings holding the GPU: the model [{model}], the reference [{expected}]";
            }
            return releasing == _reference.ReleasesPending ? null
                : $"releases waiting for deferred work: the model {releasing}, the reference {_reference.ReleasesPending}";
        }
    }
}
