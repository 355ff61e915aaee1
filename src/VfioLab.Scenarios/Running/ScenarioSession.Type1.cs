using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>The type1 ioctl steps: the runner builds the structs exactly as <c>linux/vfio.h</c> lays
/// them out and decodes what the kernel wrote back, capability chains included.</summary>
internal sealed partial class ScenarioSession
{
    /// <summary><c>iommu_get_info</c>. With an explicit <c>argsz</c> or <c>buffer</c>, one call exactly as
    /// given. Without either, the probe protocol VMMs use: a call with the bare struct, then, when the
    /// kernel asked for more room, a second call with the argsz it wrote back (as QEMU does).</summary>
    private StepResult IommuGetInfo(ScenarioStep step)
    {
        StepResult first = StructIoctl(step, VfioIoctl.IommuGetInfo, VfioIommuType1Info.SizeOf, _ => { }, DecodeIommuInfo);
        if (step.Has("argsz") || step.Has("buffer") || !first.TryGet("argsz", out ResultValue? needed) ||
            needed is null || needed.Unsigned <= VfioIommuType1Info.SizeOf)
        {
            return first;
        }
        int extra = (int)Math.Min(needed.Unsigned - VfioIommuType1Info.SizeOf, MaxIoctlBuffer);
        return StructIoctl(step, VfioIoctl.IommuGetInfo, VfioIommuType1Info.SizeOf, _ => { }, DecodeIommuInfo, extra);
    }

    private StepResult MapDma(ScenarioStep step)
    {
        DmaMapFlags flags = Flags<DmaMapFlags>(step, "flags", step.Has("flags") ? null : DmaMapFlags.Read | DmaMapFlags.Write);
        var map = new VfioIommuType1DmaMap
        {
            Flags = flags,
            Vaddr = ValueOr(step, "vaddr", 0),
            Iova = Value(step, "iova"),
            Size = Value(step, "size"),
        };
        return StructIoctl(step, VfioIoctl.IommuMapDma, VfioIommuType1DmaMap.SizeOf, b => map.Write(b), null);
    }

    private StepResult UnmapDma(ScenarioStep step)
    {
        DmaUnmapFlags flags = Flags<DmaUnmapFlags>(step, "flags", DmaUnmapFlags.None);
        var unmap = new VfioIommuType1DmaUnmap { Flags = flags, Iova = ValueOr(step, "iova", 0), Size = ValueOr(step, "size", 0) };
        VfioBitmap? bitmap = step.Has("bitmap") ? Bitmap(step.Args.GetMap("bitmap")) : null;
        if (bitmap is not null && !step.Has("flags"))
        {
            unmap.Flags |= DmaUnmapFlags.GetDirtyBitmap;
        }
        int extra = bitmap is null ? 0 : VfioBitmap.SizeOf;
        return StructIoctl(step, VfioIoctl.IommuUnmapDma, VfioIommuType1DmaUnmap.SizeOf, b =>
        {
            unmap.Write(b);
            bitmap?.Write(b.AsSpan(VfioIommuType1DmaUnmap.Offsets.Data));
        }, (b, r) =>
        {
            VfioIommuType1DmaUnmap.TryRead(b, out VfioIommuType1DmaUnmap u);
            r.Set("size", u.Size);
            r.Set("summary", $"unmapped 0x{u.Size:x}");
        }, extra);
    }

    private StepResult DirtyPages(ScenarioStep step)
    {
        string op = step.Args.GetString("op");
        DirtyPagesFlags flags = op switch
        {
            "start" => DirtyPagesFlags.Start,
            "stop" => DirtyPagesFlags.Stop,
            "get_bitmap" => DirtyPagesFlags.GetBitmap,
            _ => throw new StepFailure(step.Args.GetLocation("op"), $"unknown op '{op}' (start, stop, get_bitmap)"),
        };
        if (step.Has("flags"))
        {
            flags = Flags<DirtyPagesFlags>(step, "flags", null);
        }
        bool get = flags == DirtyPagesFlags.GetBitmap;
        var range = new VfioIommuType1DirtyBitmapGet
        {
            Iova = ValueOr(step, "iova", 0),
            Size = ValueOr(step, "size", 0),
            Bitmap = step.Has("bitmap") ? Bitmap(step.Args.GetMap("bitmap")) : default,
        };
        int extra = get ? VfioIommuType1DirtyBitmapGet.SizeOf : 0;
        return StructIoctl(step, VfioIoctl.IommuDirtyPages, VfioIommuType1DirtyBitmap.SizeOf, b =>
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(VfioIommuType1DirtyBitmap.Offsets.Flags), (uint)flags);
            if (get)
            {
                range.Write(b.AsSpan(VfioIommuType1DirtyBitmap.Offsets.Data));
            }
        }, null, extra);
    }

    private VfioBitmap Bitmap(StepArgs args) => new()
    {
        Pgsize = Value(args, "pgsize"),
        Data = Value(args, "vaddr"),
        Size = Value(args, "size"),
    };

    private static T Flags<T>(ScenarioStep step, string field, T? dflt)
        where T : struct, Enum
    {
        IReadOnlyList<string> names = step.Args.GetNames(field);
        if (names.Count == 0 && dflt is not null)
        {
            return dflt.Value;
        }
        ulong bits = 0;
        foreach (string name in names)
        {
            if (!AbiNames.TryParse(name, out T one))
            {
                throw new StepFailure(step.Args.GetLocation(field), $"unknown flag '{name}' for {typeof(T).Name}");
            }
            bits |= Convert.ToUInt64(one, System.Globalization.CultureInfo.InvariantCulture);
        }
        return (T)Enum.ToObject(typeof(T), bits);
    }

    // Walks the capability chain inside the returned buffer: each header's next is an offset from
    // the start of the buffer, 0 ends the chain. A malformed chain stops the walk (reported as is).
    private static void DecodeIommuInfo(byte[] b, StepResult r)
    {
        VfioIommuType1Info.TryRead(b, out VfioIommuType1Info info);
        r.Set("argsz", (ulong)info.Argsz);
        r.Set("flags", (ulong)info.Flags);
        r.Set("iova_pgsizes", info.IovaPgsizes);
        r.Set("cap_offset", (ulong)info.CapOffset);
        uint offset = info.CapOffset;
        for (int hops = 0; offset != 0 && hops < 16 && offset + VfioInfoCapHeader.SizeOf <= b.Length; hops++)
        {
            VfioInfoCapHeader.TryRead(b.AsSpan((int)offset), out VfioInfoCapHeader h);
            switch ((IommuType1InfoCapId)h.Id)
            {
                case IommuType1InfoCapId.IovaRange when offset + VfioIommuType1InfoCapIovaRange.SizeOf <= b.Length:
                    VfioIommuType1InfoCapIovaRange.TryRead(b.AsSpan((int)offset), out VfioIommuType1InfoCapIovaRange ranges);
                    var list = new List<ResultValue>();
                    for (uint i = 0; i < ranges.NrIovas; i++)
                    {
                        long at = offset + VfioIommuType1InfoCapIovaRange.SizeOf + (long)i * VfioIovaRange.SizeOf;
                        if (at + VfioIovaRange.SizeOf > b.Length)
                        {
                            break;
                        }
                        VfioIovaRange.TryRead(b.AsSpan((int)at), out VfioIovaRange range);
                        list.Add(ResultValue.FromMap(new Dictionary<string, ResultValue>
                        {
                            ["start"] = ResultValue.FromUInt64(range.Start),
                            ["end"] = ResultValue.FromUInt64(range.End),
                        }));
                    }
                    r.Set("iova_ranges", ResultValue.FromList(list));
                    break;
                case IommuType1InfoCapId.Migration when offset + VfioIommuType1InfoCapMigration.SizeOf <= b.Length:
                    VfioIommuType1InfoCapMigration.TryRead(b.AsSpan((int)offset), out VfioIommuType1InfoCapMigration m);
                    r.Set("migration", ResultValue.FromMap(new Dictionary<string, ResultValue>
                    {
                        ["flags"] = ResultValue.FromUInt64(m.Flags),
                        ["pgsize_bitmap"] = ResultValue.FromUInt64(m.PgsizeBitmap),
                        ["max_dirty_bitmap_size"] = ResultValue.FromUInt64(m.MaxDirtyBitmapSize),
                    }));
                    break;
                case IommuType1InfoCapId.DmaAvail when offset + VfioIommuType1InfoDmaAvail.SizeOf <= b.Length:
                    VfioIommuType1InfoDmaAvail.TryRead(b.AsSpan((int)offset), out VfioIommuType1InfoDmaAvail a);
                    r.Set("dma_avail", (ulong)a.Avail);
                    break;
            }
            offset = h.Next;
        }
    }
}
