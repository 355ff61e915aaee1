using System.Globalization;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Json.Schema;
using VfioLab.Tests.Abi;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace VfioLab.Tests.Scenarios;

/// <summary>
/// The scenario JSON Schema of <c>docs/schemas/scenario.schema.json</c>, applied to YAML the way an editor
/// applies it: the YAML is turned into JSON with the YAML 1.2 core schema's typing of plain scalars
/// (<c>4096</c> and <c>0x1000</c> are numbers, <c>true</c> a boolean, <c>on</c> and <c>4KiB</c> strings,
/// an empty value null), quoted scalars stay strings.
/// </summary>
internal static partial class ScenarioSchemaValidator
{
    public const string RelativePath = "docs/schemas/scenario.schema.json";

    private static readonly Lazy<string> Text = new(() => File.ReadAllText(Path.Combine(ConformanceProgram.FindRepositoryRoot(), RelativePath)));

    private static readonly Lazy<JsonSchema> Compiled = new(() => JsonSchema.FromText(Text.Value));

    /// <summary>The schema as a JSON tree, for reading its definitions.</summary>
    public static JsonNode Document => JsonNode.Parse(Text.Value)!;

    /// <summary>Every place the schema rejects <paramref name="yaml"/>, as <c>instance-path: message</c>; empty when it is valid.</summary>
    public static IReadOnlyList<string> Validate(string yaml)
    {
        JsonNode? json = YamlToJson(yaml);
        JsonElement instance = JsonSerializer.SerializeToElement(json);
        EvaluationResults results = Compiled.Value.Evaluate(instance, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (results.IsValid)
        {
            return [];
        }
        var errors = new List<string>();
        foreach (EvaluationResults detail in results.Details ?? [])
        {
            foreach ((string keyword, string message) in detail.Errors ?? new Dictionary<string, string>())
            {
                errors.Add($"{detail.InstanceLocation} ({detail.EvaluationPath}, {keyword}): {message}");
            }
        }
        return errors.Count > 0 ? errors : ["invalid (no detail reported)"];
    }

    /// <summary>The JSON an editor sees for a single-document YAML text.</summary>
    public static JsonNode? YamlToJson(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return stream.Documents.Count == 0 ? null : Convert(stream.Documents[0].RootNode);
    }

    private static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlScalarNode scalar => scalar.Style == ScalarStyle.Plain ? PlainScalar(scalar.Value ?? "") : JsonValue.Create(scalar.Value ?? ""),
        YamlSequenceNode sequence => new JsonArray([.. sequence.Children.Select(Convert)]),
        YamlMappingNode mapping => new JsonObject(mapping.Children.Select(
            pair => KeyValuePair.Create(((YamlScalarNode)pair.Key).Value ?? "", Convert(pair.Value)))),
        _ => throw new InvalidOperationException($"unexpected YAML node {node.NodeType}"),
    };

    // The YAML 1.2 core schema's tag resolution of a plain scalar.
    private static JsonNode? PlainScalar(string text)
    {
        if (text is "" or "~" or "null" or "Null" or "NULL")
        {
            return null;
        }
        if (text is "true" or "True" or "TRUE")
        {
            return JsonValue.Create(true);
        }
        if (text is "false" or "False" or "FALSE")
        {
            return JsonValue.Create(false);
        }
        if (DecimalInteger().IsMatch(text))
        {
            return JsonNode.Parse(BigInteger.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture));
        }
        if (HexInteger().IsMatch(text))
        {
            return JsonNode.Parse(BigInteger.Parse("0" + text[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture));
        }
        if (OctalInteger().IsMatch(text))
        {
            BigInteger value = text[2..].Aggregate(BigInteger.Zero, (acc, c) => (acc * 8) + (c - '0'));
            return JsonNode.Parse(value.ToString(CultureInfo.InvariantCulture));
        }
        if (Float().IsMatch(text))
        {
            return JsonValue.Create(double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture));
        }
        return JsonValue.Create(text);
    }

    [GeneratedRegex("^[-+]?[0-9]+$")]
    private static partial Regex DecimalInteger();

    [GeneratedRegex("^0x[0-9a-fA-F]+$")]
    private static partial Regex HexInteger();

    [GeneratedRegex("^0o[0-7]+$")]
    private static partial Regex OctalInteger();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex Float();
}
