using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>The <c>steps:</c> section, validated against <see cref="StepSchema"/>.</summary>
internal static partial class ScenarioParser
{
    private static List<ScenarioStep> ParseSteps(ScenarioNode node, IReadOnlyList<DeviceSpec> devices, IReadOnlyList<ProcessSpec> processes)
    {
        var context = new StepContext(processes.Select(p => p.Name), devices.Select(d => d.Name));
        IReadOnlyList<ScenarioNode> items = NodeRead.List(node, "steps");
        var steps = new List<ScenarioStep>(items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            steps.Add(ParseStep(items[i], i, context));
        }
        return steps;
    }

    private static ScenarioStep ParseStep(ScenarioNode node, int index, StepContext context)
    {
        string what = $"steps[{index}]";
        if (!node.IsMap || node.Entries.Count != 1)
        {
            string got = node.IsMap ? $"a map with {node.Entries.Count} keys" : node.Describe();
            ScenarioThrowHelper.ThrowParse(node.Location, $"{what}: a step is a map with exactly one key, its kind (- map_dma: {{ fd: container, ... }}); got {got}");
        }
        ScenarioNodeEntry entry = node.Entries[0];
        StepSchema schema = StepSchema.Find(entry.Key)
            ?? ScenarioThrowHelper.ThrowParse<StepSchema>(entry.KeyLocation, $"{what}: unknown step kind '{entry.Key}'; known: {string.Join(", ", StepSchema.Kinds)}");

        StepArgs args = ReadArgs(schema, entry.Value, entry.Key, context);
        string? @as = args.GetStringOrNull("as");
        StepExpectation expect = args.Has("expect") ? args.GetExpectation("expect") : StepExpectation.Ok(entry.KeyLocation);
        if (@as is not null)
        {
            context.Bind(@as, args.GetLocation("as"), isProcess: schema.Kind == "fork");
        }
        return new ScenarioStep(schema.Kind, index, entry.KeyLocation, args.GetStringOrNull("process"), @as, expect, args);
    }

    private static StepArgs ReadArgs(StepSchema schema, ScenarioNode node, string owner, StepContext context)
    {
        if (!node.IsMap && !node.IsNull)
        {
            ScenarioThrowHelper.ThrowParse(node.Location, $"{owner}: expected a map of fields ({string.Join(", ", schema.FieldNames)}), got {node.Describe()}");
        }
        var fields = new List<StepField>(node.Entries.Count);
        foreach (ScenarioNodeEntry entry in node.Entries)
        {
            FieldSpec spec = schema.Fields.GetValueOrDefault(entry.Key)
                ?? ScenarioThrowHelper.ThrowParse<FieldSpec>(entry.KeyLocation, UnknownField(schema, owner, entry.Key));
            object payload = ReadField(spec, schema, entry.Value, $"{owner}.{entry.Key}", context);
            fields.Add(new StepField(entry.Key, spec.Kind, entry.Value, payload));
        }
        var args = new StepArgs(owner, node.Location, fields);

        foreach (FieldSpec spec in schema.Fields.Values)
        {
            if (spec.Required && !args.Has(spec.Name))
            {
                ScenarioThrowHelper.ThrowParse(node.Location, $"{owner}: missing required field '{spec.Name}'; {owner} takes: {string.Join(", ", schema.FieldNames)}");
            }
        }
        foreach (FieldGroup group in schema.Groups)
        {
            string[] present = [.. group.Names.Where(args.Has)];
            if (present.Length > 1)
            {
                ScenarioThrowHelper.ThrowParse(args.GetLocation(present[1]), $"{owner}: give only one of {string.Join(", ", group.Names)}; found {string.Join(" and ", present)}");
            }
            if (group.Required && present.Length == 0)
            {
                ScenarioThrowHelper.ThrowParse(node.Location, $"{owner}: needs one of {string.Join(", ", group.Names)}");
            }
        }
        foreach ((string field, string needs) in schema.Needs)
        {
            if (args.Has(field) && !args.Has(needs))
            {
                ScenarioThrowHelper.ThrowParse(args.GetLocation(field), $"{owner}.{field}: needs '{needs}' too");
            }
        }
        return args;
    }

    private static string UnknownField(StepSchema schema, string owner, string key) =>
        schema.Kind == "check" && StepSchema.CommonFields.Contains(key)
            ? $"{owner}: '{key}' does not apply to a check, which reads the host's state and states what it expects in its one item; allowed: {string.Join(", ", schema.FieldNames)}"
            : $"{owner}: unknown field '{key}'; allowed: {string.Join(", ", schema.FieldNames)}";

    private static object ReadField(FieldSpec spec, StepSchema schema, ScenarioNode node, string what, StepContext context)
    {
        switch (spec.Kind)
        {
            case FieldKind.Value:
                return ReadReferenceValue(node, what, context);
            case FieldKind.Number:
                return NodeRead.Value(node, what, allowReference: false);
            case FieldKind.String:
                return NodeRead.NonEmpty(node, what);
            case FieldKind.Choice:
                return NodeRead.Word(node, what, spec.Choices!);
            case FieldKind.Bool:
                return NodeRead.Bool(node, what);
            case FieldKind.Flags:
                return ReadFlags(node, what, spec);
            case FieldKind.HexData:
                {
                    string text = NodeRead.Scalar(node, what);
                    return ScalarSyntax.TryParseHexBytes(text, out byte[] bytes)
                        ? new StepArgs.HexBytes(text, bytes)
                        : ScenarioThrowHelper.ThrowParse<object>(node.Location, $"{what}: expected hex bytes such as \"de ad be ef\", got '{text}'");
                }
            case FieldKind.Map:
                return ReadArgs(spec.Nested!, node, what, context);
            case FieldKind.ValueList:
                {
                    IReadOnlyList<ScenarioNode> items = NodeRead.List(node, what);
                    var values = new List<ScenarioValue>(items.Count);
                    for (int i = 0; i < items.Count; i++)
                    {
                        values.Add(ReadReferenceValue(items[i], $"{what}[{i}]", context));
                    }
                    return values;
                }
            case FieldKind.Symbol:
                {
                    string text = NodeRead.NonEmpty(node, what);
                    if (ScalarSyntax.IsVfioName(text))
                    {
                        if (spec.Choices is { } known && !known.Contains(text, StringComparer.Ordinal))
                        {
                            ScenarioThrowHelper.ThrowParse(node.Location, $"{what}: unknown {spec.Noun} '{text}'{Suggest(text, known)}; known: {string.Join(", ", known)}");
                        }
                        return new ScenarioSymbol(text, 0, node.Location);
                    }
                    return ScalarSyntax.TryParseSize(text, out ulong number, out string? error)
                        ? new ScenarioSymbol(null, number, node.Location)
                        : ScenarioThrowHelper.ThrowParse<object>(node.Location,
                            error!.StartsWith("value out of range", StringComparison.Ordinal)
                                ? $"{what}: {error}"
                                : $"{what}: expected a linux/vfio.h name (VFIO_...) or a number, got '{text}'");
                }
            case FieldKind.Expect:
                return ReadExpectation(node, what, spec.Outcomes | schema.Outcomes);
            case FieldKind.Memlock:
                return ScenarioValue.FromLiteral(Memlock(node, what), node.Location);
            case FieldKind.Process:
                {
                    string name = NodeRead.NonEmpty(node, what);
                    context.CheckProcess(name, node.Location, what);
                    return name;
                }
            case FieldKind.Device:
                {
                    string name = NodeRead.NonEmpty(node, what);
                    context.CheckDevice(name, node.Location, what);
                    return name;
                }
            case FieldKind.Binding:
                {
                    string name = NodeRead.NonEmpty(node, what);
                    if (!ScalarSyntax.IsIdentifier(name))
                    {
                        ScenarioThrowHelper.ThrowParse(node.Location, $"{what}: '{name}' is not a usable name (letters, digits and _, not starting with a digit)");
                    }
                    context.CheckUnbound(name, node.Location, what);
                    return name;
                }
            default:
                return ScenarioThrowHelper.ThrowInvalidOperation<object>($"field kind {spec.Kind} has no reader");
        }
    }

    private static ScenarioValue ReadReferenceValue(ScenarioNode node, string what, StepContext context)
    {
        ScenarioValue value = NodeRead.Value(node, what, allowReference: true);
        if (value.Reference is { } name)
        {
            context.CheckBound(name, node.Location, what);
        }
        return value;
    }

    private static List<string> ReadFlags(ScenarioNode node, string what, FieldSpec spec)
    {
        IReadOnlyList<ScenarioNode> items = NodeRead.List(node, what);
        var names = new List<string>(items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            string name = NodeRead.Scalar(items[i], $"{what}[{i}]").Trim();
            if (!ScalarSyntax.IsFlagName(name))
            {
                ScenarioThrowHelper.ThrowParse(items[i].Location, $"{what}[{i}]: '{name}' is not a flag name (its short upper-case name within the struct: READ, WRITE, ALL, ...)");
            }
            if (spec.Choices is { } known && !known.Contains(name, StringComparer.Ordinal))
            {
                ScenarioThrowHelper.ThrowParse(items[i].Location, $"{what}[{i}]: unknown flag '{name}'{Suggest(name, known)}; allowed: {string.Join(", ", known)}");
            }
            if (names.Contains(name))
            {
                ScenarioThrowHelper.ThrowParse(items[i].Location, $"{what}[{i}]: flag '{name}' is listed twice");
            }
            names.Add(name);
        }
        return names;
    }

    private static StepExpectation ReadExpectation(ScenarioNode node, string what, StepOutcomes outcomes)
    {
        if (node.IsMap)
        {
            if (node.Get("errno") is { IsScalar: true } errnoNode)
            {
                NodeRead.Errno(errnoNode, $"{what}.errno");
            }
            CheckErrnoNames(node, what);
            return StepExpectation.ForFields(node, node.Location);
        }
        string forms = "ok, an errno name"
            + ((outcomes & StepOutcomes.Fault) != 0 ? ", fault" : "")
            + ((outcomes & StepOutcomes.Sigbus) != 0 ? ", SIGBUS" : "")
            + " or a map of result fields";
        if (!node.IsScalar || node.IsNull)
        {
            return ScenarioThrowHelper.ThrowParse<StepExpectation>(node.Location, $"{what}: expected {forms}, got {node.Describe()}");
        }
        string text = node.Text.Trim();
        if (text == "ok")
        {
            return StepExpectation.Ok(node.Location);
        }
        if (text == "fault" && (outcomes & StepOutcomes.Fault) != 0)
        {
            return StepExpectation.Fault(node.Location);
        }
        if (text == "SIGBUS" && (outcomes & StepOutcomes.Sigbus) != 0)
        {
            return StepExpectation.Sigbus(node.Location);
        }
        if (ScalarSyntax.TryParseErrno(text, out Abi.Errno errno))
        {
            return StepExpectation.ForErrno(errno, node.Location);
        }
        return ScenarioThrowHelper.ThrowParse<StepExpectation>(node.Location,
            LooksLikeErrno(text) ? $"{what}: unknown errno name '{text}'" : $"{what}: expected {forms}, got '{text}'");
    }

    private static bool LooksLikeErrno(string text) =>
        text.Length > 1 && text[0] == 'E' && text.All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c));

    /// <summary>Refuses, anywhere inside an <c>expect:</c> map but under <c>flags</c>, a value written as an errno name
    /// that is not one (<c>{ result: EFOO }</c>), which would otherwise surface only when the step runs.</summary>
    private static void CheckErrnoNames(ScenarioNode node, string what)
    {
        if (node.IsScalar)
        {
            string text = node.Text.Trim();
            if (!node.IsNull && LooksLikeErrno(text) && !ScalarSyntax.TryParseErrno(text, out _))
            {
                ScenarioThrowHelper.ThrowParse(node.Location, $"{what}: unknown errno name '{text}'");
            }
            return;
        }
        if (node.IsSequence)
        {
            for (int i = 0; i < node.Items.Count; i++)
            {
                CheckErrnoNames(node.Items[i], $"{what}[{i}]");
            }
            return;
        }
        foreach (ScenarioNodeEntry entry in node.Entries)
        {
            // Flag names are compared with the struct's flags, not errnos: EVENTFD is VFIO_IRQ_INFO_EVENTFD.
            if (entry.Key != "flags")
            {
                CheckErrnoNames(entry.Value, $"{what}.{entry.Key}");
            }
        }
    }

    /// <summary>"; did you mean 'X'" for the closest known name within two edits, or nothing.</summary>
    private static string Suggest(string text, IReadOnlyList<string> known)
    {
        string? best = null;
        int bestDistance = 3;
        foreach (string k in known)
        {
            int d = EditDistance(text, k);
            if (d < bestDistance)
            {
                (best, bestDistance) = (k, d);
            }
        }
        return best is null ? "" : $" (did you mean '{best}'?)";
    }

    private static int EditDistance(string a, string b)
    {
        int[] row = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            row[j] = j;
        }
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }
}
