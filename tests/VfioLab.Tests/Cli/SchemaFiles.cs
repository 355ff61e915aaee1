using System.Text.Json;
using Json.Schema;

namespace VfioLab.Tests.Cli;

/// <summary>The JSON Schemas of docs/schemas/, each built once per test run, and a validator that says what failed.</summary>
internal static class SchemaFiles
{
    private static readonly Lazy<JsonSchema> RunOutputSchema = new(() => Load("run-output.schema.json"));
    private static readonly Lazy<JsonSchema> TraceEventSchema = new(() => Load("trace-event.schema.json"));
    private static readonly Lazy<JsonSchema> PlanOutputSchema = new(() => Load("plan-output.schema.json"));

    public static JsonSchema RunOutput => RunOutputSchema.Value;

    public static JsonSchema TraceEvent => TraceEventSchema.Value;

    public static JsonSchema PlanOutput => PlanOutputSchema.Value;

    /// <summary>Parses <paramref name="json"/> refusing duplicate keys, and asserts it is valid against <paramref name="schema"/>.</summary>
    public static JsonDocument AssertValid(JsonSchema schema, string json)
    {
        JsonDocument doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowDuplicateProperties = false });
        EvaluationResults results = schema.Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.Hierarchical });
        if (!results.IsValid)
        {
            var errors = new List<string>();
            Collect(results, errors);
            Assert.Fail($"not valid against {schema.BaseUri}:\n{string.Join('\n', errors.Take(40))}\n{(json.Length > 2000 ? json[..2000] : json)}");
        }
        return doc;
    }

    private static void Collect(EvaluationResults results, List<string> errors)
    {
        if (results.Errors is { Count: > 0 })
        {
            errors.AddRange(results.Errors.Select(e => $"{results.InstanceLocation} ({results.EvaluationPath}): {e.Key}: {e.Value}"));
        }
        foreach (EvaluationResults child in results.Details ?? [])
        {
            if (!child.IsValid)
            {
                Collect(child, errors);
            }
        }
    }

    private static JsonSchema Load(string name) =>
        JsonSchema.FromText(File.ReadAllText(Path.Combine(VfioLab.Tests.Abi.ConformanceProgram.FindRepositoryRoot(), "docs", "schemas", name)));
}
