using System.Text.Json.Nodes;

namespace VfioLab.Cli.Commands.Conform;

/// <summary>
/// One step compared: the kernel's record beside the model's. Compared are whether each met the step's expectation
/// and every field either returned (errno, return value, each output field, the buffer's bytes), except what is the
/// machine's own rather than the kernel's answer: fd numbers, pids and addresses (a real process has the runtime's fds and
/// mappings), the bytes of a struct that carries a user address, the fault fields a real device never learns of, and
/// the one-line summaries.
/// </summary>
internal static class StepDiff
{
    private static readonly HashSet<string> AlwaysIgnored = new(StringComparer.Ordinal) { "summary", "message", "fault", "fault_iova", "reason" };

    /// <summary>Fields that are identities of the machine, by step kind.</summary>
    private static readonly Dictionary<string, string[]> Identities = new(StringComparer.Ordinal)
    {
        ["open"] = ["result", "fd"],
        ["get_device_fd"] = ["result", "fd"],
        ["mmap"] = ["result", "address"],
        ["mmap_region"] = ["result", "address"],
        ["map_dma"] = ["bytes"],
        ["unmap_dma"] = ["bytes"],
        ["dirty_pages"] = ["bytes"],
        ["eventfd"] = ["result", "fd"],
        // A pid is the machine's.
        ["fork"] = ["result", "pid"],
        // The struct carries eventfd numbers, and SET_IRQS writes nothing back.
        ["set_irqs"] = ["bytes"],
    };

    /// <summary>Every difference between the two records, one sentence each; empty when they agree.</summary>
    public static List<string> Compare(StepRecord kernel, StepRecord model)
    {
        var differences = new List<string>();
        if (kernel.Passed != model.Passed)
        {
            differences.Add($"expectation: kernel {(kernel.Passed ? "met" : "missed")} it, model {(model.Passed ? "met" : "missed")} it"
                + (kernel.Problems.Count > 0 ? $" (kernel: {kernel.Problems[0]})" : string.Empty)
                + (model.Problems.Count > 0 ? $" (model: {model.Problems[0]})" : string.Empty));
        }
        if (kernel.Result is null || model.Result is null)
        {
            if (kernel.Result is not null || model.Result is not null)
            {
                differences.Add($"the step ran on {(kernel.Result is null ? "the model only" : "the kernel only")}");
            }
            return differences;
        }
        string[] identities = Identities.TryGetValue(kernel.Kind, out string[]? ids) ? ids : [];
        foreach (string field in kernel.Result.Select(kv => kv.Key).Union(model.Result.Select(kv => kv.Key)).Order(StringComparer.Ordinal))
        {
            if (AlwaysIgnored.Contains(field) || identities.Contains(field))
            {
                continue;
            }
            JsonNode? k = kernel.Result[field];
            JsonNode? m = model.Result[field];
            if (!JsonNode.DeepEquals(k, m))
            {
                differences.Add($"{field}: kernel {Show(k)}, model {Show(m)}");
            }
        }
        return differences;
    }

    private static string Show(JsonNode? node) => node is null ? "(absent)" : node.ToJsonString();
}
