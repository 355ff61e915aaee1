using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using VfioLab.Linux;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Conformance;

namespace VfioLab.Cli.Commands.Conform;

/// <summary>
/// <c>vfiolab conform-guest MANIFEST</c>, run by the rig inside the guest: each scenario of the manifest through this
/// kernel (<see cref="ScenarioConformance.RunOnRealKernel"/>), its devices mapped in order onto the vfio-pci devices the
/// rig bound (sorted by address), one JSON line per scenario on standard output.
/// </summary>
internal sealed class GuestRunner(CliConsole console)
{
    private const string VfioPciDriver = "/sys/bus/pci/drivers/vfio-pci";

    public int Execute(string manifestPath)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
        List<(string Address, ulong Group)> bound = BoundDevices();
        int failures = 0;
        foreach (JsonNode? entry in manifest["scenarios"]!.AsArray())
        {
            string file = entry!["file"]!.GetValue<string>();
            var line = new JsonObject { ["file"] = file };
            try
            {
                var devices = new Dictionary<string, string>(StringComparer.Ordinal);
                var groups = new Dictionary<ulong, ulong>();
                JsonArray wanted = entry["devices"]!.AsArray();
                if (wanted.Count > bound.Count)
                {
                    throw new InvalidOperationException($"the scenario needs {wanted.Count} devices, the guest bound {bound.Count} to vfio-pci");
                }
                for (int i = 0; i < wanted.Count; i++)
                {
                    devices[wanted[i]!["address"]!.GetValue<string>()] = bound[i].Address;
                    groups[wanted[i]!["group"]!.GetValue<ulong>()] = bound[i].Group;
                }
                line["devices"] = new JsonObject([.. devices.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))]);
                ScenarioDocument doc = ScenarioDocument.Parse(entry["text"]!.GetValue<string>(), file);
                ScenarioOutcome outcome;
                if (NeedsAgent(doc))
                {
                    // A .NET process cannot fork: a scenario that forks, or has processes beside the first, runs its
                    // processes in the rig's agents.
                    string agent = manifest["agent"]?.GetValue<string>()
                        ?? throw new InvalidOperationException("the scenario needs processes of its own, and the manifest names no agent (vfiolab conform builds conformance/agent)");
                    (AgentHost host, AgentProcess first) = AgentHost.Start(agent);
                    using (host)
                    {
                        outcome = ScenarioConformance.RunOnRealKernel(doc, new LinuxRealKernel(first, devices, groups));
                    }
                    line["agent"] = true;
                }
                else
                {
                    outcome = ScenarioConformance.RunOnRealKernel(doc, new LinuxRealKernel(new LinuxSyscalls(), devices, groups));
                }
                line["steps"] = new JsonArray([.. outcome.Steps.Select(s => (JsonNode)StepRecord.From(s).ToJson())]);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or ScenarioParseException or UnauthorizedAccessException or ArgumentException or TimeoutException)
            {
                failures++;
                line["error"] = e.Message;
            }
            console.Out.WriteLine(line.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        }
        return failures == 0 ? ExitCodes.Success : ExitCodes.ScenarioFailed;
    }

    /// <summary>Whether <paramref name="doc"/> forks or has more than one process, so that its processes must run in
    /// agents.</summary>
    internal static bool NeedsAgent(ScenarioDocument doc) => ScenarioConformance.Describe(doc) is { } t && (t.Forks || t.Processes > 1);

    /// <summary>The devices bound to vfio-pci, by address, each with its IOMMU group.</summary>
    private static List<(string Address, ulong Group)> BoundDevices()
    {
        var found = new List<(string, ulong)>();
        if (!Directory.Exists(VfioPciDriver))
        {
            return found;
        }
        foreach (string path in Directory.EnumerateFileSystemEntries(VfioPciDriver).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(path);
            if (name.Length != 12 || name[4] != ':' || name[7] != ':' || name[10] != '.')
            {
                continue;
            }
            var link = new FileInfo(Path.Combine(path, "iommu_group"));
            string? target = link.LinkTarget;
            if (target is null)
            {
                continue;
            }
            found.Add((name, ulong.Parse(Path.GetFileName(target), CultureInfo.InvariantCulture)));
        }
        return found;
    }
}
