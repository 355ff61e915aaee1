using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;
using VfioLab.Tests.Abi;
using VfioLab.Tests.Scenarios.Parsing;

namespace VfioLab.Tests.Scenarios;

/// <summary>
/// The JSON Schema for editors (<c>docs/schemas/scenario.schema.json</c>) against the parser, the truth of the
/// format: every scenario the project ships passes it, its step kinds and fields are the parser's
/// <see cref="StepSchema"/> table, its name lists and section keys are the model's, and files the parser refuses
/// for a reason a schema can express are refused by the schema too.
/// </summary>
public sealed class ScenarioSchemaTests
{
    private const string BuiltInPrefix = "built-in:";
    private const string FilePrefix = "file:";
    private const string SampleSource = "sample:every-step";

    [Theory]
    [MemberData(nameof(ShippedScenarios))]
    public void Validate_ShippedScenario_HasNoErrors(string source)
    {
        string text = source switch
        {
            SampleSource => ScenarioSamples.Full,
            _ when source.StartsWith(BuiltInPrefix, StringComparison.Ordinal) => BuiltInScenarios.GetText(source[BuiltInPrefix.Length..]),
            _ => File.ReadAllText(Path.Combine(ConformanceProgram.FindRepositoryRoot(), source[FilePrefix.Length..])),
        };

        IReadOnlyList<string> errors = ScenarioSchemaValidator.Validate(text);

        Assert.True(errors.Count == 0, $"{source}:\n{string.Join("\n", errors)}");
    }

    /// <summary>Every built-in scenario, the parser tests' sample of every step kind, and every .yaml/.yml file under tests/ and bench/.</summary>
    public static TheoryData<string> ShippedScenarios()
    {
        var data = new TheoryData<string>();
        foreach (string name in BuiltInScenarios.Names)
        {
            data.Add(BuiltInPrefix + name);
        }
        data.Add(SampleSource);
        string root = ConformanceProgram.FindRepositoryRoot();
        // bench/ holds the scenarios of the whole-process figures (bench/scenarios): checked, never run here.
        foreach (string path in new[] { "tests", "bench" }.SelectMany(d => Directory.EnumerateFiles(Path.Combine(root, d), "*.*", SearchOption.AllDirectories))
            .Order(StringComparer.Ordinal))
        {
            string relative = Path.GetRelativePath(root, path).Replace('\\', '/');
            bool generated = relative.Contains("/bin/", StringComparison.Ordinal) || relative.Contains("/obj/", StringComparison.Ordinal);
            if (!generated && (path.EndsWith(".yaml", StringComparison.Ordinal) || path.EndsWith(".yml", StringComparison.Ordinal)))
            {
                data.Add(FilePrefix + relative);
            }
        }
        return data;
    }

    [Fact]
    public void Schema_Draft202012MetaSchema_AcceptsIt()
    {
        JsonElement schema = JsonSerializer.SerializeToElement(Document);

        EvaluationResults results = MetaSchemas.Draft202012.Evaluate(schema, new EvaluationOptions { OutputFormat = OutputFormat.List });

        Assert.True(results.IsValid, string.Join("\n", (results.Details ?? []).Where(d => d.Errors is not null)
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}"))));
        Assert.Equal("https://json-schema.org/draft/2020-12/schema", (string?)Document["$schema"]);
    }

    [Fact]
    public void StepKinds_SchemaAndParserTable_AreTheSame()
    {
        JsonObject kinds = Def("step")["properties"]!.AsObject();

        Assert.Equal(StepSchema.Kinds.Order(StringComparer.Ordinal), kinds.Select(p => p.Key).Order(StringComparer.Ordinal));
        foreach ((string kind, JsonNode? reference) in kinds)
        {
            Assert.Equal($"#/$defs/step-{kind}", (string?)reference!["$ref"]);
        }
    }

    [Theory]
    [MemberData(nameof(StepKinds))]
    public void StepFields_SchemaAndParserTable_AreTheSame(string kind)
    {
        StepSchema table = StepSchema.Find(kind)!;

        AssertSameFields(table, Def($"step-{kind}"), $"step-{kind}");
    }

    public static TheoryData<string> StepKinds() => [.. StepSchema.Kinds];

    [Theory]
    [MemberData(nameof(NameLists))]
    public void NameList_Schema_EqualsModelList(string list)
    {
        (IEnumerable<string> schema, IEnumerable<string> model) = list switch
        {
            "kernel" => (EnumOf(Def("host")["properties"]!["kernel"]!), KernelProfiles.All),
            "iommu" => (EnumOf(Def("iommu")), SpecNames.Iommu.Keys),
            "reserved_regions.type" => (EnumOf(Def("reservedRegion")["properties"]!["type"]!), SpecNames.ReservedRegion.Keys),
            "driver" => (EnumOf(Def("device")["properties"]!["driver"]!), SpecNames.Driver.Keys),
            "frames.layout" => (EnumOf(Def("host")["properties"]!["frames"]!["properties"]!["layout"]!), SpecNames.FrameLayout.Keys),
            "quirks" => (Def("host")["properties"]!["quirks"]!["items"]!["oneOf"]!.AsArray().Select(q => (string)q!["const"]!), KernelQuirks.All),
            "page_size" => (Def("host")["properties"]!["page_size"]!["anyOf"]![0]!["enum"]!.AsArray()
                    .Where(v => v!.GetValueKind() == JsonValueKind.Number).Select(v => v!.ToJsonString()),
                HostSpec.AllowedPageSizes.Select(s => s.ToString(System.Globalization.CultureInfo.InvariantCulture))),
            "errno" => (EnumOf(Def("errnoName")), ErrnoNames),
            "expect" => (EnumOf(Def("expect")["oneOf"]![0]!), ["ok", .. ErrnoNames]),
            "expectOrFault" => (EnumOf(Def("expectOrFault")["oneOf"]![0]!), ["ok", "fault", .. ErrnoNames]),
            "expectOrSigbus" => (EnumOf(Def("expectOrSigbus")["oneOf"]![0]!), ["ok", "SIGBUS", .. ErrnoNames]),
            "extension" => (EnumOf(Def("extension")["anyOf"]![0]!), VfioExtension.All.Select(c => c.CName)),
            "request" => (EnumOf(Def("request")["anyOf"]![0]!), VfioIoctl.All.Select(i => i.Name)),
            "flags" => (EnumOf(Def("flags")["items"]!["anyOf"]![0]!),
                AbiNames.GetEntries<DmaMapFlags>().Select(e => e.Key)
                    .Concat(AbiNames.GetEntries<DmaUnmapFlags>().Select(e => e.Key))
                    .Concat(AbiNames.GetEntries<DirtyPagesFlags>().Select(e => e.Key)).Distinct()),
            _ => throw new ArgumentException(list),
        };

        Assert.Equal(model.Order(StringComparer.Ordinal), schema.Order(StringComparer.Ordinal));
    }

    public static TheoryData<string> NameLists() =>
    [
        "kernel", "iommu", "reserved_regions.type", "driver", "frames.layout", "quirks", "page_size", "errno", "expect",
        "expectOrFault", "expectOrSigbus", "extension", "request", "flags",
    ];

    /// <summary>
    /// The keys a section may hold, as the parser states them when it refuses an unknown key, against the
    /// schema's properties of that section.
    /// </summary>
    [Theory]
    [MemberData(nameof(Sections))]
    public void SectionKeys_SchemaAndParser_AreTheSame(string section, string scenarioWithUnknownKey, string schemaPointer)
    {
        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioParser.Parse(scenarioWithUnknownKey, "keys.yaml"));
        const string Marker = "; allowed: ";
        int at = e.Reason.IndexOf(Marker, StringComparison.Ordinal);
        Assert.True(at > 0 && e.Reason.Contains("unknown key 'zz'", StringComparison.Ordinal), $"{section}: {e.Message}");
        string[] parserKeys = e.Reason[(at + Marker.Length)..].Split(", ");

        JsonNode node = Document;
        foreach (string part in schemaPointer.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            node = node[part]!;
        }

        Assert.Equal(parserKeys.Order(StringComparer.Ordinal), node["properties"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
    }

    public static TheoryData<string, string, string> Sections() => new()
    {
        { "top level", "vfiolab: 1\nzz: 1\nsteps: []\n", "" },
        { "host", "vfiolab: 1\nhost: { zz: 1 }\nsteps: []\n", "$defs/host" },
        { "host.aperture", "vfiolab: 1\nhost: { aperture: { start: 0, last: 1, zz: 1 } }\nsteps: []\n", "$defs/range" },
        { "host.reserved_regions", "vfiolab: 1\nhost: { reserved_regions: [ { start: 0, last: 1, type: msi, zz: 1 } ] }\nsteps: []\n", "$defs/reservedRegion" },
        { "host.params", "vfiolab: 1\nhost: { params: { zz: 1 } }\nsteps: []\n", "$defs/host/properties/params" },
        { "host.frames", "vfiolab: 1\nhost: { frames: { layout: scattered, zz: 1 } }\nsteps: []\n", "$defs/host/properties/frames" },
        { "devices", "vfiolab: 1\ndevices: [ { name: a, address: \"0000:01:00.0\", zz: 1 } ]\nsteps: []\n", "$defs/device" },
        { "devices.bars", "vfiolab: 1\ndevices: [ { name: a, address: \"0000:01:00.0\", bars: [ { index: 0, size: 4KiB, zz: 1 } ] } ]\nsteps: []\n", "$defs/bar" },
        { "processes", "vfiolab: 1\nprocesses: [ { name: p, zz: 1 } ]\nsteps: []\n", "$defs/process" },
    };

    /// <summary>Files the parser refuses, each for one reason the schema can see too; the parser's message must name that reason.</summary>
    [Theory]
    [MemberData(nameof(BrokenScenarios))]
    public void Validate_BrokenScenario_IsRejectedByParserAndSchema(string why, string text, string parserSays)
    {
        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioParser.Parse(text, "broken.yaml"));
        Assert.Contains(parserSays, e.Reason);

        Assert.True(ScenarioSchemaValidator.Validate(text).Count > 0, $"the schema accepts a file with {why}");
    }

    public static TheoryData<string, string, string> BrokenScenarios() => new()
    {
        { "an unknown step kind", Steps("- map_dmaa: { fd: c, iova: 0, vaddr: 0, size: 4KiB }"), "unknown step kind 'map_dmaa'" },
        { "an unknown field", Steps("- mmap: { size: 4KiB, sise: 4KiB }"), "unknown field 'sise'" },
        { "a list where a size goes", Steps("- mmap: { size: [4096] }"), "expected a scalar" },
        { "a size with an unknown unit", Steps("- mmap: { size: 4KB }"), "unknown unit 'KB'" },
        { "a negative size", Steps("- mmap: { size: -1 }"), "expected a size or address" },
        { "a word where a boolean goes", Steps("- mmap: { size: 4KiB, populate: maybe }"), "expected true, false, on or off" },
        { "an unknown backing", Steps("- mmap: { size: 4KiB, backing: hugetlb-4m }"), "unknown value 'hugetlb-4m'" },
        { "a missing required field", Steps("- munmap: { vaddr: 0x1000 }"), "missing required field 'size'" },
        { "a step with two kinds", Steps("- { exit: {}, exec: {} }"), "exactly one key" },
        { "two of data, fill and seed", Steps("- write: { vaddr: 0x1000, data: \"00\", fill: 1, size: 1 }"), "give only one of data, fill, seed" },
        { "mmap_region without size", Steps("- mmap_region: { device_fd: 3, index: 0 }"), "missing required field 'size'" },
        { "a check with a common field", Steps("- check: { process: vmm, pinned_pages: 0 }"), "'process' does not apply to a check" },
        { "fill without size", Steps("- write: { vaddr: 0x1000, fill: 1 }"), "needs 'size' too" },
        { "hex data with an odd digit", Steps("- write: { vaddr: 0x1000, data: \"abc\" }"), "expected hex bytes" },
        { "an unknown errno", Steps("- exit: { expect: EWHAT }"), "unknown errno name 'EWHAT'" },
        { "fault on a step that has no fault", Steps("- exit: { expect: fault }"), "expected ok, an errno name or a map" },
        { "a binding that is not a name", Steps("- open: { path: /dev/vfio/vfio, as: 2fd }"), "is not a usable name" },
        { "an unknown invariant", Steps("- expect_violation: { invariant: all-good }"), "unknown value 'all-good'" },
        { "two check items", Steps("- check: { pinned_pages: 0, invariants: clean }"), "give only one of" },
        { "a null step that needs fields", Steps("- check:"), "needs one of" },
        { "no version", "steps: []\n", "missing required key 'vfiolab'" },
        { "another version", "vfiolab: 2\nsteps: []\n", "unsupported schema version" },
        { "an unknown kernel", "vfiolab: 1\nhost: { kernel: linux-2.6 }\nsteps: []\n", "unknown value 'linux-2.6'" },
        { "an unknown quirk", "vfiolab: 1\nhost: { quirks: [fast-path] }\nsteps: []\n", "unknown value 'fast-path'" },
        { "a quirk twice", "vfiolab: 1\nhost: { quirks: [unmap-owner-check, unmap-owner-check] }\nsteps: []\n", "listed twice" },
        { "run_pages with contiguous frames", "vfiolab: 1\nhost: { frames: { layout: contiguous, run_pages: 4 } }\nsteps: []\n", "apply only to layout: scattered" },
        { "a short PCI address", "vfiolab: 1\ndevices: [ { name: a, address: \"0000:01:00\" } ]\nsteps: []\n", "expected a PCI address" },
        { "an mdev named by a PCI address", "vfiolab: 1\ndevices: [ { name: a, address: \"0000:01:00.0\", driver: mdev } ]\nsteps: []\n", "an mdev's name is a UUID" },
        { "a misbehaving vfio-pci device", "vfiolab: 1\ndevices: [ { name: a, address: \"0000:01:00.0\", misbehaving: true } ]\nsteps: []\n", "applies only to driver: mdev" },
        { "BAR index 6", "vfiolab: 1\ndevices: [ { name: a, address: \"0000:01:00.0\", bars: [ { index: 6, size: 4KiB } ] } ]\nsteps: []\n", "must be at most 5" },
        { "a process without a name", "vfiolab: 1\nprocesses: [ { memlock: 1MiB } ]\nsteps: []\n", "missing required key 'name'" },
    };

    private static string Steps(string step) => $"vfiolab: 1\nsteps:\n  {step}\n";

    private static readonly string[] ErrnoNames = [.. Enum.GetValues<Errno>().Where(e => e != Errno.None).Select(e => e.ToString())];

    private static JsonNode Document => ScenarioSchemaValidator.Document;

    private static JsonNode Def(string name) =>
        Document["$defs"]![name] ?? throw new Xunit.Sdk.XunitException($"the schema has no $defs/{name}");

    private static IEnumerable<string> EnumOf(JsonNode node) => node["enum"]!.AsArray().Select(v => v!.ToJsonString().Trim('"'));

    private static string? RefOf(JsonNode? field) => (string?)field?["$ref"];

    /// <summary>Names, required fields, each field's kind, alternatives, dependencies and whether the step may be empty.</summary>
    private static void AssertSameFields(StepSchema table, JsonNode def, string where)
    {
        JsonObject properties = def["properties"]!.AsObject();
        Assert.Equal(table.FieldNames.Order(StringComparer.Ordinal), properties.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.True(def["additionalProperties"]?.GetValue<bool>() == false, $"{where}: additionalProperties must be false");

        string[] required = [.. table.Fields.Values.Where(f => f.Required).Select(f => f.Name).Order(StringComparer.Ordinal)];
        string[] schemaRequired = def["required"] is JsonArray r ? [.. r.Select(n => (string)n!).Order(StringComparer.Ordinal)] : [];
        Assert.True(required.SequenceEqual(schemaRequired), $"{where}: required {string.Join(", ", schemaRequired)}, parser {string.Join(", ", required)}");

        bool mayBeEmpty = required.Length == 0 && !table.Groups.Any(g => g.Required);
        bool schemaAllowsNull = def["type"] is JsonArray types && types.Any(t => (string?)t == "null");
        Assert.True(mayBeEmpty == schemaAllowsNull, $"{where}: the parser {(mayBeEmpty ? "accepts" : "refuses")} an empty step");

        foreach (FieldSpec field in table.Fields.Values)
        {
            JsonNode property = properties[field.Name]!;
            string at = $"{where}.{field.Name}";
            switch (field.Kind)
            {
                case FieldKind.Choice:
                    Assert.True(field.Choices!.Order(StringComparer.Ordinal).SequenceEqual(EnumOf(property).Order(StringComparer.Ordinal)), $"{at}: choices differ");
                    break;
                case FieldKind.Map:
                    string nested = RefOf(property) ?? throw new Xunit.Sdk.XunitException($"{at}: a map field needs a $ref");
                    AssertSameFields(field.Nested!, Def(nested["#/$defs/".Length..]), at);
                    break;
                default:
                    Assert.True(ExpectedRef(field, table) == RefOf(property), $"{at}: expected $ref {ExpectedRef(field, table)}, schema has {RefOf(property)}");
                    break;
            }
        }

        JsonArray allOf = def["allOf"] as JsonArray ?? new JsonArray();
        Assert.True(table.Groups.Count == allOf.Count, $"{where}: {table.Groups.Count} groups of alternatives, schema has {allOf.Count}");
        for (int i = 0; i < table.Groups.Count; i++)
        {
            FieldGroup group = table.Groups[i];
            IEnumerable<string> names = group.Required
                ? allOf[i]!["oneOf"]!.AsArray().Select(o => (string)o!["required"]![0]!)
                : allOf[i]!["not"]!["anyOf"]!.AsArray().SelectMany(o => o!["required"]!.AsArray().Select(n => (string)n!)).Distinct();
            Assert.True(group.Names.Order(StringComparer.Ordinal).SequenceEqual(names.Order(StringComparer.Ordinal)), $"{where}: alternatives {string.Join("|", group.Names)} differ");
        }

        var needs = (def["dependentRequired"] as JsonObject ?? new JsonObject()).Select(p => (p.Key, (string)p.Value![0]!)).Order().ToArray();
        Assert.Equal(table.Needs.Order().ToArray(), needs);
    }

    private static string ExpectedRef(FieldSpec field, StepSchema table) => "#/$defs/" + (field.Kind switch
    {
        FieldKind.Value => "value",
        FieldKind.Number => "literal",
        FieldKind.String => "text",
        FieldKind.Bool => "bool",
        FieldKind.Flags => "flags",
        FieldKind.HexData => "hexData",
        FieldKind.ValueList => "valueList",
        FieldKind.Memlock => "memlock",
        FieldKind.Process => "processName",
        FieldKind.Device => "deviceName",
        FieldKind.Binding => "binding",
        FieldKind.Symbol => field.Name == "request" ? "request" : "extension",
        FieldKind.Expect => ((field.Outcomes | table.Outcomes) switch
        {
            StepOutcomes.Fault => "expectOrFault",
            StepOutcomes.Sigbus => "expectOrSigbus",
            StepOutcomes.None => "expect",
            _ => "expect with both outcomes (not in the schema)",
        }),
        _ => $"kind {field.Kind} (not in the schema)",
    });
}
