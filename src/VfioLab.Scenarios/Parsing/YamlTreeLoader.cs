using VfioLab.Scenarios.Model;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace VfioLab.Scenarios.Parsing;

/// <summary>
/// Turns scenario text into one located <see cref="ScenarioNode"/> tree through YamlDotNet's
/// representation model. A first pass over the parser's events bounds nesting depth (the
/// representation model recurses, and a stack overflow cannot be caught) and rejects duplicate
/// or non-scalar keys at their own position; the conversion bounds the node count so aliases
/// cannot expand without limit. Every failure is a <see cref="ScenarioParseException"/>.
/// </summary>
internal static class YamlTreeLoader
{
    public const int MaxDepth = 32;

    /// <summary>Most nodes written in a file (scalars, keys included, maps, sequences, aliases).</summary>
    public const int MaxNodes = 1_000_000;

    /// <summary>Most nodes aliases may add when they are expanded, beyond those written.</summary>
    public const int MaxAliasNodes = 200_000;

    public static ScenarioNode Load(string text, string file)
    {
        try
        {
            int written = Prescan(text, file);
            var stream = new YamlStream();
            stream.Load(new Parser(new StringReader(text)));
            if (stream.Documents.Count == 0)
            {
                return ScenarioThrowHelper.ThrowParse<ScenarioNode>(new SourceLocation(file, 1, 1), "empty scenario file");
            }
            int budget = written + MaxAliasNodes;
            return Convert(stream.Documents[0].RootNode, file, 0, ref budget);
        }
        catch (ScenarioParseException)
        {
            throw;
        }
        catch (YamlException e)
        {
            throw new ScenarioParseException(Locate(text, file, e), "YAML: " + Clean(e.Message));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or OverflowException
            or IndexOutOfRangeException or NullReferenceException or KeyNotFoundException or InvalidCastException)
        {
            // Defensive: YamlDotNet should report malformed text as YamlException.
            throw new ScenarioParseException(new SourceLocation(file, 1, 1), "YAML: " + Clean(e.Message));
        }
    }

    // Returns the number of nodes written.
    private static int Prescan(string text, string file)
    {
        var parser = new Parser(new StringReader(text));
        var frames = new Stack<Frame>();
        int documents = 0;
        int nodes = 0;
        while (parser.MoveNext())
        {
            ParsingEvent ev = parser.Current!;
            if (ev is Scalar or AnchorAlias or MappingStart or SequenceStart && ++nodes > MaxNodes)
            {
                ScenarioThrowHelper.ThrowParse(At(file, ev.Start), $"more than {MaxNodes} YAML nodes written (keys included), the limit of a scenario file");
            }
            Frame? top = frames.Count > 0 ? frames.Peek() : null;
            bool isKey = top is { IsMap: true, ExpectKey: true };
            switch (ev)
            {
                case DocumentStart:
                    documents++;
                    if (documents > 1)
                    {
                        ScenarioThrowHelper.ThrowParse(At(file, ev.Start), "a scenario file holds one YAML document");
                    }
                    break;
                case Scalar scalar:
                    if (isKey && !top!.Keys.Add(scalar.Value))
                    {
                        ScenarioThrowHelper.ThrowParse(At(file, ev.Start), $"duplicate key '{scalar.Value}'");
                    }
                    Advance(top);
                    break;
                case AnchorAlias:
                    if (isKey)
                    {
                        ScenarioThrowHelper.ThrowParse(At(file, ev.Start), "map keys must be plain scalars, not aliases");
                    }
                    Advance(top);
                    break;
                case MappingStart or SequenceStart:
                    if (isKey)
                    {
                        ScenarioThrowHelper.ThrowParse(At(file, ev.Start), "map keys must be scalars");
                    }
                    if (frames.Count >= MaxDepth)
                    {
                        ScenarioThrowHelper.ThrowParse(At(file, ev.Start), $"nesting deeper than {MaxDepth} levels");
                    }
                    frames.Push(new Frame(ev is MappingStart));
                    break;
                case MappingEnd or SequenceEnd:
                    frames.Pop();
                    Advance(frames.Count > 0 ? frames.Peek() : null);
                    break;
            }
        }
        return nodes;
    }

    private static void Advance(Frame? frame)
    {
        if (frame is { IsMap: true })
        {
            frame.ExpectKey = !frame.ExpectKey;
        }
    }

    private static ScenarioNode Convert(YamlNode node, string file, int depth, ref int budget)
    {
        SourceLocation location = At(file, node.Start);
        if (--budget < 0)
        {
            return ScenarioThrowHelper.ThrowParse<ScenarioNode>(location, $"aliases expand to more than {MaxAliasNodes} nodes beyond those written");
        }
        if (depth > MaxDepth)
        {
            return ScenarioThrowHelper.ThrowParse<ScenarioNode>(location, $"nesting deeper than {MaxDepth} levels");
        }
        switch (node)
        {
            case YamlScalarNode scalar:
                return ScenarioNode.Scalar(location, scalar.Value ?? "",
                    scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded);
            case YamlSequenceNode sequence:
                {
                    var items = new List<ScenarioNode>(sequence.Children.Count);
                    foreach (YamlNode child in sequence.Children)
                    {
                        items.Add(Convert(child, file, depth + 1, ref budget));
                    }
                    return ScenarioNode.Sequence(location, items);
                }
            case YamlMappingNode mapping:
                {
                    var entries = new List<ScenarioNodeEntry>(mapping.Children.Count);
                    foreach (KeyValuePair<YamlNode, YamlNode> pair in mapping.Children)
                    {
                        if (pair.Key is not YamlScalarNode key)
                        {
                            return ScenarioThrowHelper.ThrowParse<ScenarioNode>(At(file, pair.Key.Start), "map keys must be scalars");
                        }
                        entries.Add(new ScenarioNodeEntry(key.Value ?? "", At(file, key.Start), Convert(pair.Value, file, depth + 1, ref budget)));
                    }
                    return ScenarioNode.Map(location, entries);
                }
            default:
                return ScenarioThrowHelper.ThrowParse<ScenarioNode>(location, "unsupported YAML node");
        }
    }

    // Some scanner errors carry no position (a tab used as indentation): those are located at the first tab that
    // indents a line, where YAML forbids one.
    private static SourceLocation Locate(string text, string file, YamlException e)
    {
        if (e.Start.Index > 0 || e.End.Index > 0 || !e.Message.Contains("tab", StringComparison.Ordinal))
        {
            return At(file, e.Start);
        }
        int line = 1;
        bool indent = true;
        for (int i = 0, column = 1; i < text.Length; i++, column++)
        {
            char c = text[i];
            if (c == '\t' && indent)
            {
                return new SourceLocation(file, line, column);
            }
            if (c is '\n' or '\r')
            {
                line += c == '\r' && i + 1 < text.Length && text[i + 1] == '\n' ? 0 : 1;
                column = 0;
                indent = true;
            }
            else if (c != ' ' && c != '-')
            {
                indent = false;
            }
        }
        return At(file, e.Start);
    }

    private static SourceLocation At(string file, Mark mark) =>
        new(file, (int)Math.Clamp(mark.Line, 1, int.MaxValue), (int)Math.Clamp(mark.Column, 1, int.MaxValue));

    private static string Clean(string message)
    {
        // YamlDotNet prefixes "(Line: l, Col: c, Idx: i) - (Line: ...): "; the location is already ours.
        int cut = message.LastIndexOf("): ", StringComparison.Ordinal);
        return cut >= 0 && message.StartsWith('(') ? message[(cut + 3)..] : message;
    }

    private sealed class Frame(bool isMap)
    {
        public bool IsMap { get; } = isMap;

        public bool ExpectKey { get; set; } = true;

        public HashSet<string> Keys { get; } = new(StringComparer.Ordinal);
    }
}
