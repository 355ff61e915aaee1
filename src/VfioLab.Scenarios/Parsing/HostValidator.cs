using VfioLab.Lab;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Running;

namespace VfioLab.Scenarios.Parsing;

/// <summary>
/// Holds a parsed scenario's <c>host</c>, <c>devices</c> and <c>processes</c> to the model's own rules before
/// anything is built: the description goes through the public <see cref="LabHostBuilder"/> and its
/// <see cref="LabHostBuilder.Validate"/> (the rules live in the model, once), and each refusal becomes a
/// <see cref="ScenarioParseException"/> at the key it came from.
/// </summary>
internal static class HostValidator
{
    private static readonly string[] HostSettings = ["memory", "page_size", "frames", "iommu_page_sizes", "aperture", "reserved_regions"];

    /// <exception cref="ScenarioParseException">The model refuses the description.</exception>
    public static void Validate(ScenarioDocument doc, ScenarioNode root)
    {
        LabHostBuilder builder = ScenarioHostFactory.Describe(doc, root);
        try
        {
            builder.Validate();
        }
        catch (LabConfigurationException e)
        {
            throw new ScenarioParseException(Locate(doc, root, e), e.Message);
        }
    }

    /// <summary>Where in <paramref name="doc"/> the setting <paramref name="e"/> refuses was written: the key's
    /// node when <paramref name="root"/> (the parsed tree) is known, else the device, process or file.</summary>
    public static SourceLocation Locate(ScenarioDocument doc, ScenarioNode? root, LabConfigurationException e)
    {
        var fileStart = new SourceLocation(doc.File, 1, 1);
        string? first = e.Setting?.Split('.', '[')[0];
        if (e.Subject is null or "host" && (first is null || HostSettings.Contains(first)))
        {
            ScenarioNode? host = root?.Get("host");
            return Walk(host, e.Setting) ?? host?.Location ?? fileStart;
        }
        int device = IndexOf(doc.Devices, d => d.Name == e.Subject);
        if (device >= 0)
        {
            return Walk(Item(root?.Get("devices"), device), e.Setting) ?? doc.Devices[device].Location;
        }
        int process = IndexOf(doc.Processes, p => p.Name == e.Subject);
        if (process >= 0)
        {
            return Walk(Item(root?.Get("processes"), process), e.Setting) ?? doc.Processes[process].Location;
        }
        return fileStart;
    }

    // Follows a key path such as "bars[1].size" from a map node, as far as it was written (a key left to its
    // default is located at the map that omits it); null without a node.
    private static SourceLocation? Walk(ScenarioNode? node, string? path)
    {
        if (node is null)
        {
            return null;
        }
        SourceLocation found = node.Location;
        foreach (string segment in (path ?? string.Empty).Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            int bracket = segment.IndexOf('[', StringComparison.Ordinal);
            string key = bracket < 0 ? segment : segment[..bracket];
            node = node.IsMap ? node.Get(key) : null;
            if (node is not null && bracket >= 0 && int.TryParse(segment.AsSpan(bracket + 1, segment.Length - bracket - 2), out int index))
            {
                node = Item(node, index);
            }
            if (node is null)
            {
                break;
            }
            found = node.Location;
        }
        return found;
    }

    private static ScenarioNode? Item(ScenarioNode? list, int index) =>
        list is { IsSequence: true } && index < list.Items.Count ? list.Items[index] : null;

    private static int IndexOf<T>(IReadOnlyList<T> items, Func<T, bool> match)
    {
        for (int i = 0; i < items.Count; i++)
        {
            if (match(items[i]))
            {
                return i;
            }
        }
        return -1;
    }
}
