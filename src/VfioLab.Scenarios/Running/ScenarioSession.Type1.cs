using VfioLab.Abi;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>The type1 ioctl steps: the structs are built and read with the Abi's codec (<c>VfioLab.Abi</c>, the
/// same the typed client uses) exactly as <c>linux/vfio.h</c> lays them out, capability chains included.</summary>
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
            new VfioIommuType1DirtyBitmap { Flags = flags }.Write(b);
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

    // The reply read by the codec the typed client uses (Abi's VfioIommuType1InfoReply, whose chain walk is the one
    // VfioCapabilityChain): every field of the struct, then each capability the chain holds, in the kernel's chain
    // order. A chain or capability that cannot be read ends what is reported, as it ends what a VMM could use.
    private static void DecodeIommuInfo(byte[] b, StepResult r)
    {
        var reply = VfioIommuType1InfoReply.Decode(b);
        VfioIommuType1Info info = reply.Info;
        r.Set("argsz", (ulong)info.Argsz);
        r.Set("flags", ResultValue.FromFlags(info.Flags));
        r.Set("iova_pgsizes", info.IovaPgsizes);
        r.Set("cap_offset", (ulong)info.CapOffset);
        if (reply.Migration is { } m)
        {
            r.Set("migration", ResultValue.FromMap(new Dictionary<string, ResultValue>
            {
                ["flags"] = ResultValue.FromUInt64(m.Flags),
                ["pgsize_bitmap"] = ResultValue.FromUInt64(m.PgsizeBitmap),
                ["max_dirty_bitmap_size"] = ResultValue.FromUInt64(m.MaxDirtyBitmapSize),
            }));
        }
        if (reply.DmaAvail is { } avail)
        {
            r.Set("dma_avail", (ulong)avail);
        }
        if (reply.IovaRanges is { } ranges)
        {
            r.Set("iova_ranges", ResultValue.FromList(ranges.Select(range => ResultValue.FromMap(new Dictionary<string, ResultValue>
            {
                ["start"] = ResultValue.FromUInt64(range.Start),
                ["end"] = ResultValue.FromUInt64(range.End),
            }))));
        }
    }
}
