using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Fuzzing;

// The mediated device's operations of a sequence: vfio_pin_pages, vfio_unpin_pages and vfio_dma_rw through the
// vendor driver, from a kernel thread, the owner or another process.
internal sealed partial class DifferentialCampaign
{
    private sealed partial class Execution
    {
        private string? Pin(RefOp op)
        {
            ulong iova = PageIova(op);
            int count = PinCounts[op.C % PinCounts.Length];
            (bool read, bool write, string name) = (op.D % 3) switch
            {
                0 => (true, true, "rw"),
                1 => (true, false, "r"),
                _ => (false, true, "w"),
            };
            long ret = _mdev.PinPages(iova, count, (read ? MemoryProtection.Read : MemoryProtection.None) | (write ? MemoryProtection.Write : MemoryProtection.None), []);
            string what = _reference.HasDomain ? "pin-pages" : "pin-pages-charged";
            long expected = _reference.PinPages(iova, count, read, write, MdevOpen);
            Step($"pin_pages: {{ device: mdev, iova: 0x{iova:x}, count: {count}, prot: {name}, expect: {(ret >= 0 ? $"{{ result: {ret} }}" : Expect(ret))} }}");
            return Results(what, ret, expected);
        }

        // vfio_unpin_pages by the mdev's vendor driver: iova A + B pages, count C. Void: compare where it warns.
        private string? Unpin(RefOp op)
        {
            ulong iova = PageIova(op);
            int count = PinCounts[op.C % PinCounts.Length];
            bool ok = _mdev.UnpinPages(iova, count);
            bool expectedWarn = _reference.UnpinPages(iova, count, MdevOpen);
            Step($"unpin_pages: {{ device: mdev, iova: 0x{iova:x}, count: {count}, expect: {{ warned: {(!ok ? "true" : "false")} }} }}");
            _figures.Reached((ok ? "unpin-pages" : "unpin-pages-warned") + (_reference.HasDomain ? string.Empty : "-uncharged"), 0);
            return !ok == expectedWarn ? null : $"unpin_pages at 0x{iova:x} x{count}: the model {(ok ? "did not warn" : "warned")}, the reference {(expectedWarn ? "warns" : "does not")}";
        }

        // vfio_dma_rw by the mdev's vendor driver from a kernel thread, the VMM's thread or the child's. A read's bytes
        // must be the owner's memory at the reference's addresses; after a write, so must the owner's memory be.
        private string? DmaRw(RefOp op)
        {
            ulong iova = PageIova(op) + (op.C % 2 == 1 ? 0xffcUL : 0);
            bool write = op.D % 2 == 1;
            // Writes at most three pages, so a replay file stays readable.
            int len = write ? Math.Min(RwLengths[op.C / 2 % RwLengths.Length], 0x3000) : RwLengths[op.C / 2 % RwLengths.Length];
            LabProcess? caller = ((op.D / 2) % 3) switch
            {
                1 => _parent,
                2 when ChildAlive => _child,
                _ => null,
            };
            byte[] data = new byte[len];
            for (int i = 0; i < len; i++)
            {
                data[i] = write ? (byte)((i * 7) + op.A + 1) : (byte)0;
            }
            byte[] sent = [.. data];
            Errno e = _mdev.DmaRw(iova, data, write, caller);
            (Errno expected, List<(int Pid, ulong Vaddr, int Offset, int Count)> chunks) = _reference.DmaRw(iova, len, write, caller?.Pid, MdevOpen);
            string who = caller is null ? string.Empty : $", process: {(ReferenceEquals(caller, _parent) ? "vmm" : "child")}";
            Step(write
                ? $"dma_rw: {{ device: mdev, iova: 0x{iova:x}, op: write, data: \"{Convert.ToHexString(sent)}\"{who}, expect: {Expect(e.AsReturn())} }}"
                : $"dma_rw: {{ device: mdev, iova: 0x{iova:x}, op: read, size: 0x{len:x}{who}, expect: {Expect(e.AsReturn())} }}");
            string? problem = Results(write ? "dma-rw-write" : "dma-rw-read", e.AsReturn(), expected.AsReturn());
            if (problem is not null)
            {
                return problem;
            }
            foreach ((int pid, ulong vaddr, int offset, int count) in chunks)
            {
                LabProcess owner = pid == _parent.Pid ? _parent : _child!;
                byte[] memory = new byte[count];
                owner.Syscalls.ReadMemory(vaddr, memory);
                byte[] want = write ? sent : data;
                // Another driver's MMIO behind a PFNMAP VMA drops writes and reads all-ones: compare RAM only.
                if ((e == Errno.None || write) && DifferentialRig.KindOf(vaddr) != DifferentialRig.MemoryKind.Pfnmap && !IsBar(vaddr))
                {
                    for (int i = 0; i < count; i++)
                    {
                        if (memory[i] != want[offset + i])
                        {
                            return $"dma_rw {(write ? "write" : "read")} at 0x{iova:x}: byte {offset + i} is 0x{want[offset + i]:x2} through the mdev, 0x{memory[i]:x2} in pid {pid}'s memory at 0x{vaddr + (ulong)i:x}";
                        }
                    }
                }
            }
            return null;
        }

        // Three times in four a page of an existing mapping (the A/4-th, B pages in), else a table IOVA + B pages.
        private ulong PageIova(RefOp op)
        {
            if (op.A % 4 != 0 && _reference.Mappings.Count > 0)
            {
                Type1Reference.Mapping m = _reference.Mappings.Values.ElementAt(op.A / 4 % _reference.Mappings.Count);
                return m.Iova + ((ulong)(op.B % 16) * 0x1000 % m.Size);
            }
            ulong baseIova = Iovas[op.A % Iovas.Length];
            ulong offset = (ulong)(op.B % 16) * 0x1000;
            return baseIova + offset < baseIova ? baseIova : baseIova + offset;
        }
    }
}
