using System.Text.Json;
using System.Text.Json.Nodes;
using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Conform;

/// <summary>One step as one side of a comparison saw it: whether it ran (or why it is model-only), whether it met its
/// expectation, its problems, and every field it returned as JSON (<see cref="StepResult.WriteJson"/>).</summary>
internal sealed record StepRecord(int Index, string Kind, string Location, string? ModelOnly, bool Passed, IReadOnlyList<string> Problems, JsonObject? Result)
{
    public static StepRecord From(StepReport report)
    {
        JsonObject? result = null;
        if (report.Result is not null)
        {
            using var stream = new MemoryStream();
            using (var writer = new Utf8JsonWriter(stream))
            {
                report.Result.WriteJson(writer);
            }
            result = JsonNode.Parse(stream.ToArray())!.AsObject();
        }
        return new StepRecord(report.Index, report.Kind, report.Location.ToString(), report.ModelOnly, report.Passed, report.Problems, result);
    }

    public JsonObject ToJson() => new()
    {
        ["index"] = Index,
        ["kind"] = Kind,
        ["location"] = Location,
        ["model_only"] = ModelOnly,
        ["passed"] = Passed,
        ["problems"] = new JsonArray([.. Problems.Select(p => (JsonNode?)JsonValue.Create(p))]),
        ["result"] = Result?.DeepClone(),
    };

    public static StepRecord FromJson(JsonObject o) => new(
        o["index"]!.GetValue<int>(),
        o["kind"]!.GetValue<string>(),
        o["location"]!.GetValue<string>(),
        o["model_only"]?.GetValue<string>(),
        o["passed"]!.GetValue<bool>(),
        [.. o["problems"]!.AsArray().Select(p => p!.GetValue<string>())],
        o["result"]?.AsObject());
}
