using System.Globalization;
using System.Text;
using VfioLab.Scenarios.Planning;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace VfioLab.Scenarios;

/// <summary>
/// What every writer of a scenario file shares (the trace importer, <c>vfiolab serve --record</c>): values spelled as
/// the format spells them, text made safe for a comment or a quoted string, a host file extended with more processes
/// and steps, and the file written whole or not at all.
/// </summary>
public static class ScenarioFile
{
    /// <summary>A size as the format writes it: the largest binary unit that divides it (<c>2MiB</c>), else hex.</summary>
    public static string Size(ulong bytes) => ScenarioEmitter.Size(bytes);

    /// <summary>Bytes as the format's hex data (lowercase, no spaces); an empty span is <c>""</c>.</summary>
    public static string Hex(ReadOnlySpan<byte> bytes) => bytes.IsEmpty ? "\"\"" : Convert.ToHexStringLower(bytes);

    /// <summary>Text for a comment or a double-quoted string: one line, with every quote, backslash and control
    /// character replaced by <c>?</c>.</summary>
    public static string Clean(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var b = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            b.Append(c is '"' or '\\' || char.IsControl(c) ? '?' : c);
        }
        return b.ToString();
    }

    /// <summary>Every name <paramref name="scenario"/> uses for a process or binds with <c>as:</c>: what a writer adding
    /// processes and steps to it must not name again.</summary>
    public static IReadOnlySet<string> NamesIn(ScenarioDocument scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (Model.ProcessSpec p in scenario.Processes)
        {
            names.Add(p.Name);
        }
        foreach (Model.ScenarioStep s in scenario.Steps)
        {
            if (s.As is { } bound)
            {
                names.Add(bound);
            }
        }
        return names;
    }

    /// <summary>Why <paramref name="path"/> cannot be written as a scenario file (its directory is missing or not
    /// writable, or it is a directory), or null when a file can be created beside it and renamed over it.</summary>
    public static string? CheckWritable(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            return $"{path} is a directory";
        }
        string dir = Path.GetDirectoryName(full) ?? ".";
        if (!Directory.Exists(dir))
        {
            return $"the directory {dir} does not exist";
        }
        string probe = TempBeside(full);
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write))
            {
            }
            File.Delete(probe);
            return null;
        }
        catch (IOException e)
        {
            return $"{dir} is not writable ({e.Message})";
        }
        catch (UnauthorizedAccessException)
        {
            return $"{dir} is not writable (permission denied)";
        }
    }

    /// <summary>Writes <paramref name="text"/> to <paramref name="path"/> whole or not at all: to a temporary file
    /// beside it, then renamed over it, so a failure (a full disk, a missing directory) leaves no half-written scenario
    /// and an existing file as it was.</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory or the file is not writable.</exception>
    public static void WriteAtomically(string path, string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(text);
        string full = Path.GetFullPath(path);
        string temp = TempBeside(full);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                byte[] bytes = new UTF8Encoding(false).GetBytes(text);
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    private static string TempBeside(string full) =>
        Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    /// <summary>
    /// A scenario that is <paramref name="hostText"/> (a scenario file: its host, devices, processes and steps) with
    /// more processes declared after its own and more steps run after its own. Every top-level section but
    /// <c>name</c>, <c>description</c>, <c>processes</c> and <c>steps</c> is kept as written, comments included; the
    /// file's own processes and steps are kept item by item. A file that declares no process ran its steps in the
    /// implicit <c>main</c>: it is declared first, so those steps still run there.
    /// </summary>
    /// <param name="hostText">The host scenario's text; it must parse (<see cref="ScenarioDocument.Parse"/>).</param>
    /// <param name="hostFile">Its file name, for messages.</param>
    /// <param name="name">The new scenario's <c>name</c>.</param>
    /// <param name="description">Its <c>description</c> (one line; cleaned as <see cref="Clean"/>).</param>
    /// <param name="headerComments">Comment lines put first (without the <c>#</c>).</param>
    /// <param name="processLines">Lines of the <c>processes</c> list to add, each a whole item (<c>  - { name: ... }</c>).</param>
    /// <param name="stepLines">Lines of the <c>steps</c> list to add (items and comments, indented by two).</param>
    /// <exception cref="ScenarioParseException"><paramref name="hostText"/> is not YAML with a mapping at its top.</exception>
    public static string ExtendHost(string hostText, string hostFile, string name, string description, IEnumerable<string> headerComments,
        IReadOnlyList<string> processLines, IReadOnlyList<string> stepLines)
    {
        ArgumentNullException.ThrowIfNull(hostText);
        ArgumentNullException.ThrowIfNull(hostFile);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(description);
        ArgumentNullException.ThrowIfNull(headerComments);
        ArgumentNullException.ThrowIfNull(processLines);
        ArgumentNullException.ThrowIfNull(stepLines);
        YamlMappingNode root = LoadRoot(hostText, hostFile);
        var y = new StringBuilder();
        foreach (string line in headerComments)
        {
            y.Append("# ").AppendLine(Clean(line));
        }
        y.AppendLine(CultureInfo.InvariantCulture, $"vfiolab: {ScenarioDocument.Version}");
        y.AppendLine(CultureInfo.InvariantCulture, $"name: \"{Clean(name)}\"");
        y.AppendLine(CultureInfo.InvariantCulture, $"description: \"{Clean(description)}\"");
        string[] lines = hostText.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var keys = root.Children.ToList();
        YamlSequenceNode? processes = null;
        YamlSequenceNode? steps = null;
        for (int i = 0; i < keys.Count; i++)
        {
            string key = (keys[i].Key as YamlScalarNode)?.Value ?? "";
            switch (key)
            {
                case "vfiolab" or "name" or "description":
                    continue;
                case "processes":
                    processes = keys[i].Value as YamlSequenceNode;
                    continue;
                case "steps":
                    steps = keys[i].Value as YamlSequenceNode;
                    continue;
                default:
                    break;
            }
            if (root.Style == MappingStyle.Flow)
            {
                y.Append(Serialize(new YamlMappingNode(keys[i].Key, keys[i].Value), indent: ""));
                continue;
            }
            // The section's own lines: the comments just above its key, the key, its value, up to the next section.
            int first = SectionStart(lines, keys, i);
            int end = i + 1 < keys.Count ? SectionStart(lines, keys, i + 1) : lines.Length;
            for (int l = first; l < end && l < lines.Length; l++)
            {
                y.AppendLine(lines[l]);
            }
        }
        y.AppendLine("processes:");
        if (processes is null || processes.Children.Count == 0)
        {
            if (steps is { Children.Count: > 0 })
            {
                y.AppendLine("  - { name: main }   # the host's steps ran in the implicit main process");
            }
        }
        else
        {
            foreach (YamlNode item in processes.Children)
            {
                y.Append(Serialize(new YamlSequenceNode(item), indent: "  "));
            }
        }
        foreach (string line in processLines)
        {
            y.AppendLine(line);
        }
        bool hostSteps = steps is { Children.Count: > 0 };
        // An empty list keeps the file well formed when no client made a call.
        y.AppendLine(hostSteps || stepLines.Count > 0 ? "steps:" : "steps: []");
        if (hostSteps)
        {
            y.AppendLine("  # the host's own steps, run first as vfiolab serve ran them");
            foreach (YamlNode item in steps!.Children)
            {
                y.Append(Serialize(new YamlSequenceNode(item), indent: "  "));
            }
        }
        foreach (string line in stepLines)
        {
            y.AppendLine(line);
        }
        return y.ToString();
    }

    // The first line of top-level section i: its key's line, or the comment lines (and blank lines between them) right
    // above it, back to the previous section's last line of content.
    private static int SectionStart(string[] lines, List<KeyValuePair<YamlNode, YamlNode>> keys, int i)
    {
        int start = (int)keys[i].Key.Start.Line - 1;
        int floor = i > 0 ? (int)keys[i - 1].Value.End.Line : 0;
        while (start - 1 >= floor && start - 1 < lines.Length && lines[start - 1].TrimStart() is { } above && (above.Length == 0 || above[0] == '#'))
        {
            start--;
        }
        while (start < (int)keys[i].Key.Start.Line - 1 && lines[start].Trim().Length == 0)
        {
            start++;
        }
        return start;
    }

    private static YamlMappingNode LoadRoot(string text, string file)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new ScenarioParseException(new SourceLocation(file, (int)e.Start.Line, (int)e.Start.Column), e.Message);
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new ScenarioParseException(new SourceLocation(file, 1, 1), "the host file is not a YAML mapping");
        }
        return root;
    }

    // A node as YAML text, each line indented: the emitter keeps every scalar's style, so the value reads back the same.
    private static string Serialize(YamlNode node, string indent)
    {
        var w = new StringWriter(CultureInfo.InvariantCulture);
        new YamlStream(new YamlDocument(node)).Save(w, assignAnchors: false);
        var b = new StringBuilder();
        foreach (string line in w.ToString().Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'))
        {
            if (line.Length == 0 || line == "..." || line == "---")
            {
                continue;
            }
            b.Append(indent).AppendLine(line);
        }
        return b.ToString();
    }
}
