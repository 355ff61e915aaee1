using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>
/// Parses and validates a v1 scenario file (SCENARIOS.md) into a <see cref="ScenarioDocument"/>.
/// Nothing runs here. Any problem with the text, however malformed, is a
/// <see cref="ScenarioParseException"/> naming file, line and column.
/// </summary>
internal static partial class ScenarioParser
{
    private static readonly string[] TopLevelKeys = ["vfiolab", "name", "description", "host", "devices", "processes", "steps"];

    /// <exception cref="ScenarioParseException">The file cannot be read or is malformed.</exception>
    public static ScenarioDocument ParseFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = ReadBounded(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return ScenarioThrowHelper.ThrowParse<ScenarioDocument>(new SourceLocation(path, 1, 1), $"cannot read the file: {e.Message}");
        }
        return Parse(DecodeUtf8(bytes, path), path);
    }

    /// <summary>The largest scenario file read: 16 MiB (docs/scenario-format.md, "Limits"). A longer file, or a
    /// device that never ends (<c>/dev/zero</c>), is refused where the limit is crossed, without reading on.</summary>
    public const int MaxFileBytes = 16 << 20;

    private static byte[] ReadBounded(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        byte[] buffer = new byte[64 << 10];
        using var kept = new MemoryStream();
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            if (kept.Length + read > MaxFileBytes)
            {
                kept.Write(buffer, 0, MaxFileBytes - (int)kept.Length);
                ThrowTooLong(kept.GetBuffer().AsSpan(0, MaxFileBytes), path);
            }
            kept.Write(buffer, 0, read);
        }
        return kept.ToArray();
    }

    private static void ThrowTooLong(ReadOnlySpan<byte> first, string path)
    {
        int line = 1 + first.Count((byte)'\n');
        int column = first.Length - first.LastIndexOf((byte)'\n');
        ScenarioThrowHelper.ThrowParse(new SourceLocation(path, line, column),
            $"the file is longer than {MaxFileBytes} bytes (16 MiB), the limit of a scenario file; nothing past it was read");
    }

    // Strict UTF-8 (a BOM is allowed): a bad byte is refused at its line and column instead of being
    // replaced with U+FFFD, which File.ReadAllText would do silently.
    private static string DecodeUtf8(byte[] bytes, string path)
    {
        ReadOnlySpan<byte> span = bytes;
        if (span.StartsWith((ReadOnlySpan<byte>)[0xef, 0xbb, 0xbf]))
        {
            span = span[3..];
        }
        int line = 1;
        int column = 1;
        for (int i = 0; i < span.Length;)
        {
            if (System.Text.Rune.DecodeFromUtf8(span[i..], out System.Text.Rune rune, out int used) != System.Buffers.OperationStatus.Done)
            {
                ScenarioThrowHelper.ThrowParse(new SourceLocation(path, line, column), $"the file is not valid UTF-8 (byte 0x{span[i]:x2})");
            }
            (line, column) = rune.Value == '\n' ? (line + 1, 1) : (line, column + 1);
            i += used;
        }
        return System.Text.Encoding.UTF8.GetString(span);
    }

    /// <param name="text">The file's contents.</param>
    /// <param name="file">The name used in messages and kept in <see cref="ScenarioDocument.File"/>.</param>
    /// <exception cref="ScenarioParseException">The text is malformed.</exception>
    public static ScenarioDocument Parse(string text, string file)
    {
        if (text.Length > MaxFileBytes)
        {
            ThrowTooLong(System.Text.Encoding.UTF8.GetBytes(text[..MaxFileBytes]).AsSpan(0, MaxFileBytes), file);
        }
        ScenarioNode root = YamlTreeLoader.Load(text, file);
        if (root.IsNull)
        {
            ScenarioThrowHelper.ThrowParse(root.Location, "empty scenario file");
        }
        if (!root.IsMap)
        {
            ScenarioThrowHelper.ThrowParse(root.Location, $"a scenario is a map with keys {string.Join(", ", TopLevelKeys)}; got {root.Describe()}");
        }
        var top = new MapReader(root, "scenario", TopLevelKeys);

        ScenarioNode version = top.Required("vfiolab");
        if (!version.IsScalar || version.Text.Trim() != "1")
        {
            ScenarioThrowHelper.ThrowParse(version.Location, $"vfiolab: unsupported schema version {version.Describe()}; this reader knows vfiolab: 1");
        }

        ScenarioNode? nameNode = top.Optional("name");
        string name = nameNode is null ? Path.GetFileNameWithoutExtension(file) : NodeRead.NonEmpty(nameNode, "name");
        ScenarioNode? descriptionNode = top.Optional("description");
        string? description = descriptionNode is null ? null : NodeRead.Scalar(descriptionNode, "description");

        ScenarioNode? hostNode = top.Optional("host");
        HostSpec host = hostNode is null ? HostSpec.Default : ParseHost(hostNode);
        IReadOnlyList<DeviceSpec> devices = ParseDevices(top.Optional("devices"));
        IReadOnlyList<ProcessSpec> processes = ParseProcesses(top.Optional("processes"));
        ScenarioNode stepsNode = top.Get("steps") ?? ScenarioThrowHelper.ThrowParse<ScenarioNode>(root.Location, "scenario: missing required key 'steps'");
        IReadOnlyList<ScenarioStep> steps = ParseSteps(stepsNode, devices, processes);

        var doc = new ScenarioDocument(name, description, file, host, devices, processes, steps);
        HostValidator.Validate(doc, root);
        return doc;
    }
}
