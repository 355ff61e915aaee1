using VfioLab.Abi;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>
/// The schema of every step kind of SCENARIOS.md, in one table: allowed fields with their kinds,
/// which are required, alternatives (<c>data | fill | seed</c>) and fields that need another
/// (<c>fill</c> needs <c>size</c>). Every step but <c>check</c> also takes <c>process</c>, <c>as</c> and
/// <c>expect</c>; ioctl steps also take <c>argsz</c> and <c>buffer</c>.
/// </summary>
internal sealed class StepSchema
{
    private static readonly string[] Rw = ["rw", "r"];

    private StepSchema(string kind, bool isIoctl, StepOutcomes outcomes, IReadOnlyList<FieldSpec> fields,
        IReadOnlyList<FieldGroup> groups, IReadOnlyList<(string Field, string Needs)> needs)
    {
        Kind = kind;
        IsIoctl = isIoctl;
        Outcomes = outcomes;
        Fields = fields.ToDictionary(f => f.Name, StringComparer.Ordinal);
        FieldNames = [.. fields.Select(f => f.Name)];
        Groups = groups;
        Needs = needs;
    }

    public string Kind { get; }

    /// <summary>The step issues an ioctl, so it takes <c>argsz</c> and <c>buffer</c> and returns <c>bytes</c>.</summary>
    public bool IsIoctl { get; }

    /// <summary>Outcome words its <c>expect:</c> allows beyond ok, errno and a map.</summary>
    public StepOutcomes Outcomes { get; }

    public IReadOnlyDictionary<string, FieldSpec> Fields { get; }

    /// <summary>The allowed field names in table order, for messages.</summary>
    public IReadOnlyList<string> FieldNames { get; }

    public IReadOnlyList<FieldGroup> Groups { get; }

    public IReadOnlyList<(string Field, string Needs)> Needs { get; }

    /// <summary>The fields every step kind but <c>check</c> takes besides its own.</summary>
    public static IReadOnlyList<string> CommonFields { get; } = ["process", "as", "expect"];

    /// <summary>The items of a <c>check</c> step, of which it names exactly one (its only field).</summary>
    public static IReadOnlyList<string> CheckItems { get; } = ["locked_vm", "pinned_pages", "mappings", "dma_avail", "iommu_entries", "translate", "invariants"];

    /// <summary>Every step kind, keyed by its name.</summary>
    public static IReadOnlyDictionary<string, StepSchema> All { get; } = Build();

    /// <summary>The step kind names in table order.</summary>
    public static IReadOnlyList<string> Kinds { get; } = [.. All.Values.Select(s => s.Kind)];

    public static StepSchema? Find(string kind) => All.GetValueOrDefault(kind);

    private static Dictionary<string, StepSchema> Build()
    {
        var table = new List<StepSchema>
        {
            // Process and memory.
            Step("mmap", Req("size", FieldKind.Value),
                Choice("backing", ["anonymous", "hugetlb-2m", "hugetlb-1g", "shared", "pfnmap"]), Choice("prot", Rw),
                Opt("populate", FieldKind.Bool), Opt("at", FieldKind.Value), Opt("refcounted", FieldKind.Bool)),
            Step("mmap_region", Req("device_fd", FieldKind.Value), Req("index", FieldKind.Number), Opt("offset", FieldKind.Value),
                Req("size", FieldKind.Value), Choice("prot", Rw), Opt("at", FieldKind.Value)),
            Step("munmap", Req("vaddr", FieldKind.Value), Req("size", FieldKind.Value)),
            Step("write", [new FieldGroup(["data", "fill", "seed"], Required: true)], [("fill", "size"), ("seed", "size")],
                Req("vaddr", FieldKind.Value), Opt("data", FieldKind.HexData), Opt("fill", FieldKind.Number),
                Opt("seed", FieldKind.Number), Opt("size", FieldKind.Value)),
            Step("read", StepOutcomes.Sigbus, Req("vaddr", FieldKind.Value), Req("size", FieldKind.Value)),
            Step("fork"),
            Step("exit"),
            Step("exec"),
            Step("hold_mmap_lock"),
            Step("release_mmap_lock"),
            Step("set_rlimit", Req("memlock", FieldKind.Memlock)),

            // Files and ioctls.
            Step("open", Req("path", FieldKind.String)),
            Step("close", Req("fd", FieldKind.Value)),
            Ioctl("get_api_version", Req("fd", FieldKind.Value)),
            Ioctl("check_extension", Req("fd", FieldKind.Value), Extension("extension")),
            Ioctl("set_iommu", Req("fd", FieldKind.Value), Extension("type")),
            Ioctl("group_get_status", Req("fd", FieldKind.Value)),
            Ioctl("group_set_container", Req("fd", FieldKind.Value), Req("container", FieldKind.Value)),
            Ioctl("group_unset_container", Req("fd", FieldKind.Value)),
            Ioctl("get_device_fd", Req("fd", FieldKind.Value), Req("name", FieldKind.String)),
            Ioctl("iommu_get_info", Req("fd", FieldKind.Value)),
            Ioctl("map_dma", Req("fd", FieldKind.Value), Req("iova", FieldKind.Value), Req("vaddr", FieldKind.Value),
                Req("size", FieldKind.Value), Flags<DmaMapFlags>()),
            Ioctl("unmap_dma", Req("fd", FieldKind.Value), Opt("iova", FieldKind.Value), Opt("size", FieldKind.Value),
                Flags<DmaUnmapFlags>(), Map("bitmap", Bitmap("unmap_dma.bitmap"))),
            Ioctl("dirty_pages", Req("fd", FieldKind.Value), Choice("op", ["start", "stop", "get_bitmap"], required: true),
                Opt("iova", FieldKind.Value), Opt("size", FieldKind.Value), Flags<DirtyPagesFlags>(),
                Map("bitmap", Bitmap("dirty_pages.bitmap"))),
            Ioctl("device_get_info", Req("fd", FieldKind.Value)),
            Ioctl("device_get_region_info", Req("fd", FieldKind.Value), Req("index", FieldKind.Number)),
            Ioctl("device_get_irq_info", Req("fd", FieldKind.Value), Req("index", FieldKind.Number)),
            new StepSchema("set_irqs", isIoctl: true, StepOutcomes.None,
                WithCommon([Req("fd", FieldKind.Value), Req("index", FieldKind.Number), Opt("start", FieldKind.Number),
                    Opt("count", FieldKind.Number), Flags<IrqSetFlags>(), Opt("eventfds", FieldKind.ValueList), Opt("data", FieldKind.HexData)], isIoctl: true),
                [new FieldGroup(["eventfds", "data"], Required: false)], []),
            Ioctl("device_feature", Req("fd", FieldKind.Value), Req("feature", FieldKind.Number),
                new FieldSpec("flags", FieldKind.Flags, Choices: ["GET", "SET", "PROBE"], Noun: "flag"), Opt("data", FieldKind.HexData)),
            Step("region_read", Req("fd", FieldKind.Value), Req("index", FieldKind.Number), Opt("offset", FieldKind.Value),
                Req("size", FieldKind.Value)),
            Step("region_write", Req("fd", FieldKind.Value), Req("index", FieldKind.Number), Opt("offset", FieldKind.Value),
                Req("data", FieldKind.HexData)),
            Step("eventfd"),
            Step("eventfd_read", Req("fd", FieldKind.Value)),
            Step("eventfd_write", Req("fd", FieldKind.Value), Opt("value", FieldKind.Value)),
            Ioctl("device_reset", Req("fd", FieldKind.Value)),
            Ioctl("pci_hot_reset", Req("fd", FieldKind.Value), Opt("groups", FieldKind.ValueList)),
            Step("pci_command", Req("fd", FieldKind.Value), Req("memory", FieldKind.Bool)),
            Ioctl("spapr_tce_get_info", Req("fd", FieldKind.Value)),
            Ioctl("spapr_register_memory", Req("fd", FieldKind.Value), Req("vaddr", FieldKind.Value), Req("size", FieldKind.Value)),
            Ioctl("spapr_unregister_memory", Req("fd", FieldKind.Value), Req("vaddr", FieldKind.Value), Req("size", FieldKind.Value)),
            Ioctl("spapr_tce_create", Req("fd", FieldKind.Value), Req("page_shift", FieldKind.Number),
                Req("window_size", FieldKind.Value), Opt("levels", FieldKind.Number)),
            Ioctl("spapr_tce_remove", Req("fd", FieldKind.Value), Req("start", FieldKind.Value)),
            Ioctl("iommu_enable", Req("fd", FieldKind.Value)),
            Ioctl("iommu_disable", Req("fd", FieldKind.Value)),
            new StepSchema("ioctl", isIoctl: true, StepOutcomes.None,
                WithCommon([Req("fd", FieldKind.Value), Request("request"), Opt("arg", FieldKind.HexData),
                    Opt("value", FieldKind.Value)], isIoctl: true),
                [new FieldGroup(["arg", "value"], Required: false)], []),

            // Devices and drivers.
            Step("dma", StepOutcomes.Fault, [new FieldGroup(["data", "fill", "seed"], Required: false)], [("fill", "size"), ("seed", "size")],
                Req("device", FieldKind.Device), Choice("op", ["read", "write"], required: true), Req("iova", FieldKind.Value),
                Opt("size", FieldKind.Value), Opt("data", FieldKind.HexData), Opt("fill", FieldKind.Number), Opt("seed", FieldKind.Number)),
            Step("pin_pages", Req("device", FieldKind.Device), Req("iova", FieldKind.Value), Req("count", FieldKind.Number),
                Choice("prot", ["rw", "r", "w"])),
            Step("unpin_pages", Req("device", FieldKind.Device), Req("iova", FieldKind.Value), Req("count", FieldKind.Number)),
            Step("dma_rw", [new FieldGroup(["data", "size"], Required: true)], [],
                Req("device", FieldKind.Device), Req("iova", FieldKind.Value), Choice("op", ["read", "write"], required: true),
                Opt("data", FieldKind.HexData), Opt("size", FieldKind.Value)),
            Step("device_release", Req("device", FieldKind.Device)),
            Step("unplug", Req("device", FieldKind.Device)),
            Step("device_interrupt", Req("device", FieldKind.Device), Choice("index", ["intx", "msi", "msix", "err", "req"], required: true),
                Opt("vector", FieldKind.Number)),

            // Host.
            Step("run_deferred_work"),
            // A check reads the host's state and states what it expects in its item, so it takes none of the
            // common fields: no process acts, nothing is bound, and the item is its only field.
            new StepSchema("check", isIoctl: false, StepOutcomes.None, [
                Map("locked_vm", Nested("check.locked_vm", Req("process", FieldKind.Process), Opt("bytes", FieldKind.Value))),
                Opt("pinned_pages", FieldKind.Number),
                Map("mappings", Nested("check.mappings", Req("fd", FieldKind.Value), Req("count", FieldKind.Number))),
                Map("dma_avail", Nested("check.dma_avail", Req("fd", FieldKind.Value), Req("count", FieldKind.Number))),
                Map("iommu_entries", Nested("check.iommu_entries", Req("device", FieldKind.Device), Req("count", FieldKind.Number))),
                Map("translate", Nested("check.translate", Req("device", FieldKind.Device), Req("iova", FieldKind.Value),
                    new FieldSpec("expect", FieldKind.Expect, Required: true, Outcomes: StepOutcomes.Fault))),
                Choice("invariants", ["clean"])],
                [new FieldGroup(CheckItems, Required: true)], []),
            Step("expect_violation", new FieldSpec("invariant", FieldKind.Choice, Required: true, Choices: Lab.InvariantNames.All)),
        };
        return table.ToDictionary(s => s.Kind, StringComparer.Ordinal);
    }

    private static StepSchema Step(string kind, params FieldSpec[] fields) => Step(kind, StepOutcomes.None, fields);

    private static StepSchema Step(string kind, StepOutcomes outcomes, params FieldSpec[] fields) =>
        new(kind, isIoctl: false, outcomes, WithCommon(fields, isIoctl: false), [], []);

    private static StepSchema Step(string kind, FieldGroup[] groups, (string, string)[] needs, params FieldSpec[] fields) =>
        Step(kind, StepOutcomes.None, groups, needs, fields);

    private static StepSchema Step(string kind, StepOutcomes outcomes, FieldGroup[] groups, (string, string)[] needs, params FieldSpec[] fields) =>
        new(kind, isIoctl: false, outcomes, WithCommon(fields, isIoctl: false), groups, needs);

    private static StepSchema Ioctl(string kind, params FieldSpec[] fields) =>
        new(kind, isIoctl: true, StepOutcomes.None, WithCommon(fields, isIoctl: true), [], []);

    private static StepSchema Nested(string owner, params FieldSpec[] fields) =>
        new(owner, isIoctl: false, StepOutcomes.None, fields, [], []);

    private static StepSchema Bitmap(string owner) =>
        Nested(owner, Req("pgsize", FieldKind.Value), Req("vaddr", FieldKind.Value), Req("size", FieldKind.Value));

    private static List<FieldSpec> WithCommon(FieldSpec[] fields, bool isIoctl)
    {
        var all = new List<FieldSpec>(fields)
        {
            Opt("process", FieldKind.Process),
            Opt("as", FieldKind.Binding),
            Opt("expect", FieldKind.Expect),
        };
        if (isIoctl)
        {
            all.Add(Opt("argsz", FieldKind.Value));
            all.Add(Opt("buffer", FieldKind.Value));
        }
        return all;
    }

    private static FieldSpec Req(string name, FieldKind kind) => new(name, kind, Required: true);

    private static FieldSpec Opt(string name, FieldKind kind) => new(name, kind);

    private static FieldSpec Choice(string name, IReadOnlyList<string> choices, bool required = false) =>
        new(name, FieldKind.Choice, required, choices);

    private static FieldSpec Map(string name, StepSchema nested) => new(name, FieldKind.Map, Nested: nested);

    /// <summary>An optional <c>flags</c> list of the short names of <typeparamref name="T"/>'s flags.</summary>
    private static FieldSpec Flags<T>()
        where T : struct, Enum =>
        new("flags", FieldKind.Flags, Choices: [.. AbiNames.GetEntries<T>().Select(e => e.Key)], Noun: "flag");

    /// <summary>A required <c>VFIO_CHECK_EXTENSION</c> / <c>VFIO_SET_IOMMU</c> argument: an extension's C name or a number.</summary>
    private static FieldSpec Extension(string name) =>
        new(name, FieldKind.Symbol, Required: true, Choices: [.. VfioExtension.All.Select(c => c.CName)], Noun: "extension");

    /// <summary>A required ioctl request: a <c>linux/vfio.h</c> request name or a number.</summary>
    private static FieldSpec Request(string name) =>
        new(name, FieldKind.Symbol, Required: true, Choices: [.. VfioIoctl.All.Select(i => i.Name).Distinct()], Noun: "ioctl request");
}
