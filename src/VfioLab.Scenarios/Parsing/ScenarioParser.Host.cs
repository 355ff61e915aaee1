using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>The <c>host:</c> section.</summary>
internal static partial class ScenarioParser
{
    private static readonly string[] HostKeys =
        ["memory", "page_size", "iommu", "iommu_page_sizes", "aperture", "reserved_regions", "kernel", "quirks", "params", "frames"];

    private static readonly string[] RangeKeys = ["start", "last"];

    private static readonly string[] ReservedKeys = ["start", "last", "type"];

    private static readonly string[] ParamKeys = ["dma_entry_limit", "disable_hugepages", "allow_unsafe_interrupts", "strict_mmio_maps"];

    private static readonly string[] FrameKeys = ["layout", "run_pages", "seed"];

    private static HostSpec ParseHost(ScenarioNode node)
    {
        var map = new MapReader(node, "host", HostKeys);
        HostSpec d = HostSpec.Default;

        ulong pageSize = d.PageSize;
        if (map.Optional("page_size") is { } pageNode)
        {
            pageSize = NodeRead.Size(pageNode, "host.page_size");
            if (!HostSpec.AllowedPageSizes.Contains(pageSize))
            {
                ScenarioThrowHelper.ThrowParse(pageNode.Location, $"host.page_size: 0x{pageSize:x} is not a supported PAGE_SIZE; allowed: 4KiB, 16KiB, 64KiB");
            }
        }

        ulong memory = d.Memory;
        if (map.Optional("memory") is { } memoryNode)
        {
            memory = NodeRead.Size(memoryNode, "host.memory");
            if (memory == 0 || memory % pageSize != 0)
            {
                ScenarioThrowHelper.ThrowParse(memoryNode.Location, $"host.memory: 0x{memory:x} is not a non-zero multiple of the page size 0x{pageSize:x}");
            }
        }

        IommuHardware iommu = map.Optional("iommu") is { } iommuNode ? NodeRead.Choice(iommuNode, "host.iommu", SpecNames.Iommu) : d.Iommu;
        IReadOnlyList<ulong>? pageSizes = map.Optional("iommu_page_sizes") is { } sizesNode
            ? NodeRead.PageSizes(sizesNode, "host.iommu_page_sizes")
            : null;
        AddressRangeSpec? aperture = map.Optional("aperture") is { } apertureNode ? ParseRange(apertureNode, "host.aperture") : null;

        var reserved = new List<ReservedRegionSpec>();
        IReadOnlyList<ScenarioNode> reservedNodes = NodeRead.List(map.Optional("reserved_regions"), "host.reserved_regions");
        for (int i = 0; i < reservedNodes.Count; i++)
        {
            string what = $"host.reserved_regions[{i}]";
            var region = new MapReader(reservedNodes[i], what, ReservedKeys);
            AddressRangeSpec range = ParseRange(reservedNodes[i], what, allowType: true);
            ReservedRegionKind type = NodeRead.Choice(region.Required("type"), region.Path("type"), SpecNames.ReservedRegion);
            reserved.Add(new ReservedRegionSpec(range.Start, range.Last, type, range.Location));
        }

        string kernel = map.Optional("kernel") is { } kernelNode ? NodeRead.Word(kernelNode, "host.kernel", Lab.KernelProfiles.All) : d.Kernel;

        var quirks = new List<string>();
        IReadOnlyList<ScenarioNode> quirkNodes = NodeRead.List(map.Optional("quirks"), "host.quirks");
        for (int i = 0; i < quirkNodes.Count; i++)
        {
            string quirk = NodeRead.Word(quirkNodes[i], $"host.quirks[{i}]", Lab.KernelQuirks.All);
            if (quirks.Contains(quirk))
            {
                ScenarioThrowHelper.ThrowParse(quirkNodes[i].Location, $"host.quirks[{i}]: '{quirk}' is listed twice");
            }
            quirks.Add(quirk);
        }

        HostParams hostParams = map.Optional("params") is { } paramsNode ? ParseParams(paramsNode) : d.Params;
        FrameLayoutSpec frames = map.Optional("frames") is { } framesNode ? ParseFrames(framesNode) : d.Frames;

        return new HostSpec(memory, pageSize, iommu, pageSizes, aperture, reserved, kernel, quirks, hostParams, frames);
    }

    private static AddressRangeSpec ParseRange(ScenarioNode node, string what, bool allowType = false)
    {
        var map = new MapReader(node, what, allowType ? ReservedKeys : RangeKeys);
        ulong start = NodeRead.Size(map.Required("start"), map.Path("start"));
        ScenarioNode lastNode = map.Required("last");
        ulong last = NodeRead.Size(lastNode, map.Path("last"));
        if (last < start)
        {
            ScenarioThrowHelper.ThrowParse(lastNode.Location, $"{what}: last 0x{last:x} is below start 0x{start:x} (the range is inclusive)");
        }
        return new AddressRangeSpec(start, last, node.Location);
    }

    private static HostParams ParseParams(ScenarioNode node)
    {
        var map = new MapReader(node, "host.params", ParamKeys);
        HostParams d = HostParams.Default;
        uint limit = d.DmaEntryLimit;
        if (map.Optional("dma_entry_limit") is { } limitNode)
        {
            ulong value = NodeRead.Size(limitNode, "host.params.dma_entry_limit");
            limit = value <= uint.MaxValue
                ? (uint)value
                : ScenarioThrowHelper.ThrowParse<uint>(limitNode.Location, "value out of range: host.params.dma_entry_limit is an unsigned 32-bit module parameter");
        }
        return new HostParams(
            limit,
            OptionalBool(map, "disable_hugepages", d.DisableHugepages),
            OptionalBool(map, "allow_unsafe_interrupts", d.AllowUnsafeInterrupts),
            OptionalBool(map, "strict_mmio_maps", d.StrictMmioMaps));
    }

    private static FrameLayoutSpec ParseFrames(ScenarioNode node)
    {
        var map = new MapReader(node, "host.frames", FrameKeys);
        FrameLayoutKind layout = NodeRead.Choice(map.Required("layout"), "host.frames.layout", SpecNames.FrameLayout);
        ulong runPages = FrameLayoutSpec.DefaultRunPages;
        if (map.Optional("run_pages") is { } runNode)
        {
            runPages = NodeRead.Size(runNode, "host.frames.run_pages");
            if (runPages == 0)
            {
                ScenarioThrowHelper.ThrowParse(runNode.Location, "host.frames.run_pages: must be at least 1");
            }
        }
        ulong seed = map.Optional("seed") is { } seedNode ? NodeRead.Size(seedNode, "host.frames.seed") : FrameLayoutSpec.DefaultSeed;
        if (layout == FrameLayoutKind.Contiguous && (map.Optional("run_pages") ?? map.Optional("seed")) is { } extra)
        {
            ScenarioThrowHelper.ThrowParse(extra.Location, "host.frames: run_pages and seed apply only to layout: scattered");
        }
        return new FrameLayoutSpec(layout, runPages, seed);
    }

    private static bool OptionalBool(MapReader map, string key, bool dflt) =>
        map.Optional(key) is { } node ? NodeRead.Bool(node, map.Path(key)) : dflt;
}
