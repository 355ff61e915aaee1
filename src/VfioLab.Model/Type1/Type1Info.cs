using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// VFIO_IOMMU_GET_INFO of one type1 container (spec §1.4, <c>vfio_iommu_type1_get_info</c>): flags, the page sizes
/// offered, and the capability chain (MIGRATION, DMA_AVAIL, IOVA_RANGE) as the kernel lays it out.
/// </summary>
/// <remarks>Lock: takes the container's type1 lock (<see cref="Type1Context.Lock"/>) to read the page sizes, the
/// windows and <c>dma_avail</c> in one go; no state of its own.</remarks>
internal sealed class Type1Info(Type1Context ctx, DmaTree tree, IovaWindows windows, DomainSet domains)
{
    /// <summary>
    /// VFIO_IOMMU_GET_INFO: EFAULT (copy in or out), EINVAL (argsz below 16). Writes flags, page sizes and,
    /// when argsz leaves room, the capability chain (MIGRATION, DMA_AVAIL, then IOVA_RANGE when any window
    /// exists) at offset 24, each capability padded to 8 bytes (v6.6+; not under
    /// <see cref="Type1Behavior.UnalignedInfoCaps"/>); when it does not, argsz is set to the size needed and
    /// cap_offset stays 0. Never writes past argsz.
    /// </summary>
    public Errno GetInfo(ref IoctlArgument argument)
    {
        Span<byte> raw = stackalloc byte[VfioIommuType1Info.SizeOf];
        if (!argument.TryCopyFrom(0, raw[..VfioIommuType1Info.MinSize]))
        {
            return Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_get_info", "copy_from_user of the first {0} bytes of struct vfio_iommu_type1_info faulted",
                (ulong)VfioIommuType1Info.MinSize);
        }
        VfioIommuType1Info.TryRead(raw, VfioIommuType1Info.MinSize, out VfioIommuType1Info info);
        if (info.Argsz < VfioIommuType1Info.MinSize)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_get_info", "argsz {0} is below minsz {1}", info.Argsz, (ulong)VfioIommuType1Info.MinSize);
        }
        // minsz for the copy back is fixed before argsz may be rewritten below. Before a881b496941f (v6.6) it was
        // offsetofend(iova_pgsizes), or offsetofend(cap_offset) once argsz reached it.
        int length = !ctx.Behavior.UnalignedInfoCaps ? (int)Math.Min(info.Argsz, (uint)VfioIommuType1Info.SizeOf)
            : info.Argsz >= CapOffsetEnd ? CapOffsetEnd : VfioIommuType1Info.MinSize;
        byte[] caps;
        using (ctx.Lock.EnterScope())
        {
            info.Flags = IommuInfoFlags.Pgsizes;
            info.IovaPgsizes = domains.PgsizeBitmapLocked;
            caps = BuildCapsLocked();
        }
        info.Flags |= IommuInfoFlags.Caps;
        info.CapOffset = 0;
        if (info.Argsz < (ulong)(VfioIommuType1Info.SizeOf + caps.Length))
        {
            info.Argsz = (uint)(VfioIommuType1Info.SizeOf + caps.Length);
        }
        else
        {
            if (!argument.TryCopyTo(VfioIommuType1Info.SizeOf, caps))
            {
                return Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_get_info", "copy_to_user of the {0}-byte capability chain at offset {1} faulted",
                    (ulong)caps.Length, (ulong)VfioIommuType1Info.SizeOf);
            }
            info.CapOffset = VfioIommuType1Info.SizeOf;
        }
        Span<byte> back = stackalloc byte[VfioIommuType1Info.SizeOf];
        info.Write(back);
        return argument.TryCopyTo(0, back[..length])
            ? Errno.None
            : Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_get_info", "copy_to_user of {0} bytes of struct vfio_iommu_type1_info faulted", (ulong)length);
    }

    // The chain as the kernel lays it out, with next offsets already rebased past the 24-byte struct.
    private byte[] BuildCapsLocked()
    {
        ctx.AssertLocked();
        // The smallest advertised size: under quirk subpage-iommu-pages it may be below the dirty granularity.
        ulong pgsize = domains.AdvertisedMinPageSizeLocked;
        IReadOnlyList<ByteRange> ranges = windows.ListLocked.Ranges;
        int migration = VfioIommuType1InfoCapMigration.SizeOf;
        int dmaAvail = CapSize(VfioIommuType1InfoDmaAvail.SizeOf);
        int iova = ranges.Count == 0 ? 0 : CapSize(VfioIommuType1InfoCapIovaRange.SizeOf + (ranges.Count * VfioIovaRange.SizeOf));
        var buf = new byte[migration + dmaAvail + iova];
        int baseOffset = VfioIommuType1Info.SizeOf;

        var mig = new VfioIommuType1InfoCapMigration
        {
            Header = new VfioInfoCapHeader { Id = (ushort)IommuType1InfoCapId.Migration, Version = 1, Next = (uint)(baseOffset + migration) },
            Flags = 0,
            PgsizeBitmap = pgsize,
            MaxDirtyBitmapSize = DirtyTracker.DirtyBitmapSizeMax,
        };
        mig.Write(buf);

        var avail = new VfioIommuType1InfoDmaAvail
        {
            Header = new VfioInfoCapHeader
            {
                Id = (ushort)IommuType1InfoCapId.DmaAvail,
                Version = 1,
                Next = iova == 0 ? 0 : (uint)(baseOffset + migration + dmaAvail),
            },
            Avail = tree.DmaAvailLocked,
        };
        avail.Write(buf.AsSpan(migration));

        if (iova != 0)
        {
            Span<byte> cap = buf.AsSpan(migration + dmaAvail);
            var head = new VfioIommuType1InfoCapIovaRange
            {
                Header = new VfioInfoCapHeader { Id = (ushort)IommuType1InfoCapId.IovaRange, Version = 1, Next = 0 },
                NrIovas = (uint)ranges.Count,
            };
            head.Write(cap);
            for (int i = 0; i < ranges.Count; i++)
            {
                Span<byte> entry = cap[(VfioIommuType1InfoCapIovaRange.SizeOf + (i * VfioIovaRange.SizeOf))..];
                BinaryPrimitives.WriteUInt64LittleEndian(entry, ranges[i].Start);
                BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], ranges[i].Last);
            }
        }
        return buf;
    }

    // offsetofend(struct vfio_iommu_type1_info, cap_offset): the copy size of v6.5 and before.
    private const int CapOffsetEnd = 20;

    // vfio_info_cap_add pads each capability to 8 bytes since a881b496941f (v6.6); before, a 12-byte DMA_AVAIL
    // left the next capability misaligned.
    private int CapSize(int n) => ctx.Behavior.UnalignedInfoCaps ? n : (n + 7) & ~7;
}
