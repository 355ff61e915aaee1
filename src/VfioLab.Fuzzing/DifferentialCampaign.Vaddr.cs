using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Fuzzing;

// The VADDR update on both sides: UNMAP_DMA with VADDR (with and without ALL), MAP_DMA with VADDR, and
// CHECK_EXTENSION(VFIO_UPDATE_VADDR).
internal sealed partial class DifferentialCampaign
{
    private sealed partial class Execution
    {
        private string? UnmapVaddr(RefOp op)
        {
            bool all = op.D % 2 == 1;
            (ulong iova, ulong size) = all ? (0UL, 0UL) : RangeOf(op, spanToEnd: op.C % 3 == 0);
            DmaUnmapFlags flags = DmaUnmapFlags.Vaddr | (all ? DmaUnmapFlags.All : DmaUnmapFlags.None);
            Span<byte> buf = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
            new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Flags = flags, Iova = iova, Size = size }.Write(buf);
            long ret = _parent.Syscalls.Ioctl(ContainerFd, VfioIoctl.IommuUnmapDma, buf);
            VfioIommuType1DmaUnmap.TryRead(buf, out VfioIommuType1DmaUnmap back);
            (long expected, ulong expectedSize) = _reference.InvalidateVaddr(iova, size, all);
            Step($"unmap_dma: {{ fd: {ContainerFd}, iova: 0x{iova:x}, size: 0x{size:x}, flags: [VADDR{(all ? ", ALL" : string.Empty)}], expect: {(ret == 0 ? $"{{ size: 0x{back.Size:x} }}" : Expect(ret))} }}");
            return Results("unmap-vaddr" + (all ? "-all" : string.Empty), ret, expected)
                ?? (ret == 0 && back.Size != expectedSize ? $"unmap with VADDR wrote back size 0x{back.Size:x}, the reference 0x{expectedSize:x}" : null);
        }

        private string? MapVaddr(RefOp op)
        {
            (ulong iova, ulong size) = RangeOf(op, spanToEnd: false);
            Type1Reference.Mapping? m = _reference.Find(iova);
            ulong vaddr = op.B % 3 == 0 && m is not null && m.Iova == iova ? m.Vaddr : VaddrChoice(op.B / 3);
            LabProcess p = op.D % 2 == 1 && ChildAlive && !IsBar(vaddr) ? _child! : _parent;
            Span<byte> buf = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
            new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = DmaMapFlags.Vaddr, Vaddr = vaddr, Iova = iova, Size = size }.Write(buf);
            long ret = p.Syscalls.Ioctl(ContainerFd, VfioIoctl.IommuMapDma, buf);
            long expected = _reference.UpdateVaddr(p.Pid, iova, vaddr, size);
            Step($"map_dma: {{ fd: {ContainerFd}, iova: 0x{iova:x}, vaddr: 0x{vaddr:x}, size: 0x{size:x}, flags: [VADDR]{ProcessField(p)}, expect: {Expect(ret)} }}");
            return Results(ReferenceEquals(p, _parent) ? "map-vaddr" : "map-vaddr-child", ret, expected);
        }

        private string? UpdateVaddrExtension()
        {
            long ret = _parent.Syscalls.Ioctl(ContainerFd, VfioIoctl.CheckExtension, (ulong)VfioExtension.UpdateVaddr);
            Step($"check_extension: {{ fd: {ContainerFd}, extension: VFIO_UPDATE_VADDR, expect: {{ result: {ret} }} }}");
            return Results("check-extension-update-vaddr-" + ret, ret, _reference.UpdateVaddrExtension);
        }

        // Three times in four an existing mapping's exact range (or from it to the last mapping's end), else
        // an IOVA and a size from the tables.
        private (ulong Iova, ulong Size) RangeOf(RefOp op, bool spanToEnd)
        {
            if (op.A % 4 != 0 && _reference.Mappings.Count > 0)
            {
                Type1Reference.Mapping m = _reference.Mappings.Values.ElementAt(op.A / 4 % _reference.Mappings.Count);
                ulong last = spanToEnd ? _reference.Mappings.Values.Last().Last : m.Last;
                return (m.Iova, last - m.Iova + 1);
            }
            return (Iovas[op.A % Iovas.Length], Sizes[op.C % Sizes.Length]);
        }
    }
}
