using System.Globalization;

namespace VfioLab.Scenarios.Import;

/// <summary>
/// Reads one line of a QEMU trace or log against <see cref="TraceEventFormat.All"/>: finds the first event name in
/// it (as a whole word, so any prefix — the log backend's <c>PID@SECONDS:</c>, journald's <c>QEMU[PID]: kvm:</c>,
/// QEMU's own <c>qemu-system-x86_64:</c> — is passed over), then its arguments in the log backend's form or in
/// <c>simpletrace.py</c>'s (<c>NAME DELTA pid=N arg=0x… …</c>). A line naming no event is not the import's
/// business; a line naming one whose arguments do not read is refused at the column where they stop reading.
/// </summary>
internal static class TraceLineReader
{
    /// <summary>An argument as read: its value (a hole of type <c>s</c> or <c>r</c> has only text) and where.</summary>
    internal readonly record struct Arg(ulong Value, string Text, int Column);

    /// <summary>The event a line names and its arguments by name, or null when it names none.</summary>
    /// <exception cref="ScenarioParseException">The line names an event whose arguments do not read.</exception>
    public static (TraceEventFormat Format, int Column, Dictionary<string, Arg> Args)? Read(string line, string file, int lineNumber)
    {
        (TraceEventFormat? format, int at) = Find(line);
        if (format is null)
        {
            return null;
        }
        int pos = at + format.Name.Length;
        var args = new Dictionary<string, Arg>(StringComparer.Ordinal);
        var ctx = new Cursor(line, file, lineNumber);
        if (format.ErrorReport)
        {
            pos++;
            MatchPattern(ctx, format, ref pos, args);
        }
        else
        {
            int afterName = SkipBlanks(line, pos);
            if (afterName == pos && pos < line.Length)
            {
                throw ctx.Error(pos, $"expected a blank after {format.Name}");
            }
            pos = afterName;
            if (IsSimpleBackend(line, pos))
            {
                ReadSimple(ctx, format, pos, args);
                return (format, at + 1, args);
            }
            MatchPattern(ctx, format, ref pos, args);
        }
        pos = SkipBlanks(line, pos);
        if (pos < line.Length)
        {
            throw ctx.Error(pos, $"unexpected text after the arguments of {format.Name}: '{Excerpt(line, pos)}'");
        }
        return (format, at + 1, args);
    }

    private static (TraceEventFormat? Format, int At) Find(string line)
    {
        TraceEventFormat? best = null;
        int bestAt = int.MaxValue;
        foreach (TraceEventFormat f in TraceEventFormat.All)
        {
            for (int from = 0; from < line.Length;)
            {
                int at = line.IndexOf(f.Name, from, StringComparison.Ordinal);
                if (at < 0 || at >= bestAt)
                {
                    break;
                }
                int end = at + f.Name.Length;
                bool startsWord = at == 0 || !IsNameChar(line[at - 1]);
                bool endsWord = f.ErrorReport ? end < line.Length && line[end] == '(' : end == line.Length || char.IsWhiteSpace(line[end]);
                if (startsWord && endsWord)
                {
                    best = f;
                    bestAt = at;
                    break;
                }
                from = at + 1;
            }
        }
        return (best, bestAt);
    }

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    /// <summary><c>simpletrace.py</c> prints the microseconds since the previous record, then <c>pid=N</c>.</summary>
    private static bool IsSimpleBackend(string line, int pos)
    {
        int i = pos;
        while (i < line.Length && (char.IsAsciiDigit(line[i]) || line[i] == '.'))
        {
            i++;
        }
        if (i == pos)
        {
            return false;
        }
        int next = SkipBlanks(line, i);
        return next > i && string.CompareOrdinal(line, next, "pid=", 0, 4) == 0;
    }

    private static void ReadSimple(Cursor ctx, TraceEventFormat format, int pos, Dictionary<string, Arg> args)
    {
        string line = ctx.Line;
        var given = new Dictionary<string, (string Text, int Pos)>(StringComparer.Ordinal);
        while (pos < line.Length)
        {
            int start = pos;
            while (pos < line.Length && !char.IsWhiteSpace(line[pos]))
            {
                pos++;
            }
            string token = line[start..pos];
            int eq = token.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                if (given.Count > 0 || !IsDelta(token))
                {
                    throw ctx.Error(start, $"expected NAME=VALUE in the simple backend's form of {format.Name}, found '{token}'");
                }
            }
            else
            {
                given[token[..eq]] = (token[(eq + 1)..], start + eq + 1);
            }
            pos = SkipBlanks(line, pos);
        }
        foreach ((string name, char type) in Holes(format.Pattern))
        {
            if (!given.TryGetValue(name, out (string Text, int Pos) v))
            {
                throw ctx.Error(line.Length, $"{format.Name} has no argument '{name}'");
            }
            if (type is 's' or 'r')
            {
                args[name] = new Arg(0, v.Text, v.Pos + 1);
                continue;
            }
            // simpletrace.py prints every non-string argument as 0x%x of the 64-bit record, a negative int sign-extended.
            int p = 0;
            ulong value = ReadHex(ctx, v.Text, ref p, name, v.Pos);
            if (p != v.Text.Length)
            {
                throw ctx.Error(v.Pos + p, $"argument '{name}' of {format.Name} is not a 0x hex number: '{v.Text}'");
            }
            args[name] = new Arg(value, v.Text, v.Pos + 1);
        }
    }

    private static bool IsDelta(string token) => token.Length > 0 && token.All(c => char.IsAsciiDigit(c) || c == '.');

    private static IEnumerable<(string Name, char Type)> Holes(string pattern)
    {
        for (int i = pattern.IndexOf('{', StringComparison.Ordinal); i >= 0; i = pattern.IndexOf('{', i + 1))
        {
            int close = pattern.IndexOf('}', i);
            string hole = pattern[(i + 1)..close];
            yield return (hole[..^2], hole[^1]);
        }
    }

    private static void MatchPattern(Cursor ctx, TraceEventFormat format, ref int pos, Dictionary<string, Arg> args)
    {
        string line = ctx.Line;
        string pattern = format.Pattern;
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == ' ')
            {
                int next = SkipBlanks(line, pos);
                if (next == pos)
                {
                    throw ctx.Error(pos, $"expected a blank in {format.Name}, found {Found(line, pos)}");
                }
                pos = next;
                continue;
            }
            if (c != '{')
            {
                if (pos >= line.Length || line[pos] != c)
                {
                    throw ctx.Error(pos, $"expected '{c}' in {format.Name}, found {Found(line, pos)}");
                }
                pos++;
                continue;
            }
            int close = pattern.IndexOf('}', i);
            string name = pattern[(i + 1)..(close - 2)];
            char type = pattern[close - 1];
            i = close;
            int start = pos;
            switch (type)
            {
                case 'x':
                    args[name] = new Arg(ReadHex(ctx, line, ref pos, name, 0), line[start..pos], start + 1);
                    break;
                case 'p':
                    if (string.CompareOrdinal(line, pos, "(nil)", 0, 5) == 0)
                    {
                        pos += 5;
                        args[name] = new Arg(0, "(nil)", start + 1);
                    }
                    else
                    {
                        args[name] = new Arg(ReadHex(ctx, line, ref pos, name, 0), line[start..pos], start + 1);
                    }
                    break;
                case 'd':
                    args[name] = new Arg((ulong)ReadDecimal(ctx, line, ref pos, name), line[start..pos], start + 1);
                    break;
                case 's':
                    while (pos < line.Length && !char.IsWhiteSpace(line[pos]) && line[pos] != ')')
                    {
                        pos++;
                    }
                    if (pos == start)
                    {
                        throw ctx.Error(pos, $"expected {name} in {format.Name}, found {Found(line, pos)}");
                    }
                    args[name] = new Arg(0, line[start..pos], start + 1);
                    break;
                default:
                    int end = line.IndexOf(')', pos);
                    pos = end < 0 ? line.Length : end;
                    args[name] = new Arg(0, line[start..pos], start + 1);
                    break;
            }
        }
    }

    /// <summary>A <c>0x</c> hex number of at most 64 bits at <paramref name="pos"/> of <paramref name="text"/>, which
    /// starts at 0-based column <paramref name="columnBase"/> of the line.</summary>
    private static ulong ReadHex(Cursor ctx, string text, ref int pos, string name, int columnBase)
    {
        int p = pos;
        if (p + 2 > text.Length || text[p] != '0' || (text[p + 1] != 'x' && text[p + 1] != 'X'))
        {
            throw ctx.Error(columnBase + p, $"expected {name} as a 0x hex number, found {Found(text, p)}");
        }
        int digits = p + 2;
        int end = digits;
        while (end < text.Length && char.IsAsciiHexDigit(text[end]))
        {
            end++;
        }
        if (end == digits)
        {
            throw ctx.Error(columnBase + digits, $"expected hex digits after 0x in {name}, found {Found(text, digits)}");
        }
        if (!ulong.TryParse(text.AsSpan(digits, end - digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong value))
        {
            throw ctx.Error(columnBase + p, $"{name} {text[p..end]} does not fit in 64 bits");
        }
        pos = end;
        return value;
    }

    private static long ReadDecimal(Cursor ctx, string line, ref int pos, string name)
    {
        int start = pos;
        int p = pos;
        if (p < line.Length && line[p] == '-')
        {
            p++;
        }
        while (p < line.Length && char.IsAsciiDigit(line[p]))
        {
            p++;
        }
        if (!long.TryParse(line.AsSpan(start, p - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
        {
            throw ctx.Error(start, $"expected {name} as a decimal number, found {Found(line, start)}");
        }
        pos = p;
        return value;
    }

    private static int SkipBlanks(string line, int pos)
    {
        while (pos < line.Length && (line[pos] == ' ' || line[pos] == '\t'))
        {
            pos++;
        }
        return pos;
    }

    private static string Found(string text, int pos) => pos >= text.Length ? "the end of the line" : $"'{Excerpt(text, pos)}'";

    private static string Excerpt(string text, int pos)
    {
        int end = pos;
        while (end < text.Length && !char.IsWhiteSpace(text[end]) && end - pos < 24)
        {
            end++;
        }
        return end == pos ? text[pos].ToString() : text[pos..end];
    }

    /// <summary>The line being read, to locate errors in it.</summary>
    private sealed record Cursor(string Line, string File, int LineNumber)
    {
        public ScenarioParseException Error(int pos, string reason) => new(new SourceLocation(File, LineNumber, pos + 1), reason);
    }
}
