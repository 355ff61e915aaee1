using System.Globalization;
using System.Text;
using VfioLab.Scenarios;

namespace VfioLab.Fuzzing;

/// <summary>
/// The scenario-file campaign: from a seed, takes a built-in scenario (or the fuzz rig) and mutates it —
/// truncation, deleted, duplicated, swapped or re-indented lines, values of the wrong type, huge and
/// malformed numbers, unknown keys, deep nesting, anchor/alias bombs, stray bytes, invalid UTF-8 — then
/// parses it from text and from a file. Each mutant must either parse or fail with a
/// <see cref="ScenarioParseException"/> located in that file (line and column within it); one that
/// parses is run, and may fail its steps but must not throw anything but a located error. Any other
/// exception is a violation.
/// </summary>
internal sealed class ScenarioCampaign
{
    private static readonly string[] WrongValues =
    [
        "[1, 2]", "{ a: 1 }", "true", "-1", "99999999999999999999999", "0x1ffffffffffffffffff", "18446744073709551616", "1e309",
        "\"\"", "~", "16EiB", "0xffffffffffffffffTiB", "18446744073709551615TiB", "*undefined", "!!binary AAAA", "!tag x", "&a 1",
        "0x", "-0x1", "1.5MiB", "ram+", "ram+0xffffffffffffffff", "\"\\uD800\"", "'unterminated", "[", "}", "\t1", "%TAG", "? a : b",
    ];

    private static readonly byte[][] BadUtf8 = [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]];

    private readonly string _workDirectory;

    /// <param name="workDirectory">Where mutants are written to be parsed as files.</param>
    public ScenarioCampaign(string workDirectory)
    {
        _workDirectory = workDirectory;
    }

    /// <summary>What was tried and reached.</summary>
    public FuzzFigures Figures { get; } = new();

    /// <summary>Failing cases found; each scenario is the mutant's text.</summary>
    public List<FuzzViolation> Violations { get; } = [];

    /// <summary>Parses (and runs, when it parses) the mutant of seed <paramref name="seed"/>.</summary>
    public void RunSeed(ulong seed)
    {
        byte[] bytes = MutantOf(seed, out string name, out string how);
        RunFile(bytes, seed, name, how);
    }

    /// <summary>Parses (and runs, when it parses) one scenario file given as bytes: what
    /// <see cref="RunSeed"/> does with a mutant, for a file a regression test wrote by hand.</summary>
    public void RunFile(byte[] bytes, ulong seed, string name, string how)
    {
        Figures.ScenarioFiles++;
        string fromText = Encoding.UTF8.GetString(bytes);
        string file = Path.Combine(_workDirectory, string.Create(CultureInfo.InvariantCulture, $"mutant-{seed}.yaml"));
        File.WriteAllBytes(file, bytes);
        try
        {
            bool validUtf8 = System.Text.Unicode.Utf8.IsValid(bytes);
            string? problem = Judge(() => ScenarioDocument.Parse(fromText, "mutant.yaml"), "mutant.yaml", fromText, run: false, mustFail: false)
                ?? Judge(() => ScenarioDocument.Load(file), file, fromText, run: validUtf8, mustFail: !validUtf8);
            if (problem is not null)
            {
                Figures.Violations++;
                Violations.Add(new FuzzViolation("scenario", "any", seed, $"{name} after {how}: {problem}", fromText));
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>The mutant file of seed <paramref name="seed"/>: which scenario it started from and what was done to it.</summary>
    public static byte[] MutantOf(ulong seed, out string baseName, out string how)
    {
        var rng = new SplitMix64(seed);
        string[] bases = [.. BuiltInScenarios.Names, "fuzz-rig"];
        baseName = bases[rng.Next() % (ulong)bases.Length];
        string text = baseName == "fuzz-rig" ? FuzzRig.ScenarioText("seeds") : BuiltInScenarios.GetText(baseName);
        return Mutant(ref rng, text, out how);
    }

    private string? Judge(Func<ScenarioDocument> parse, string file, string text, bool run, bool mustFail)
    {
        ScenarioDocument doc;
        try
        {
            doc = parse();
        }
        catch (ScenarioParseException e)
        {
            Figures.Reached("scenario parse", -22);
            return Located(e, file, text);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"parse threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }
        Figures.Reached("scenario parse", 0);
        if (mustFail)
        {
            return "a file that is not valid UTF-8 was accepted";
        }
        if (!run)
        {
            return null;
        }
        try
        {
            ScenarioOutcome outcome = ScenarioRunner.Run(doc, new RunOptions());
            Figures.Reached("scenario run", outcome.Passed ? 0 : -1);
            return null;
        }
        catch (ScenarioParseException e)
        {
            Figures.Reached("scenario build", -22);
            return Located(e, file, text);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"run threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }
    }

    // A located error names the file, a line within it (or just past its end) and a column >= 1.
    internal static string? Located(ScenarioParseException e, string file, string text)
    {
        // YAML breaks lines at CR LF, a lone CR and LF alike.
        int lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n', '\r').Length;
        return e.File == file && e.Line >= 1 && e.Line <= lines + 1 && e.Column >= 1 && e.Message.StartsWith(e.Location.ToString(), StringComparison.Ordinal)
            ? null
            : $"badly located error {e.Location} (file has {lines} lines): {e.Message}";
    }

    private static byte[] Mutant(ref SplitMix64 rng, string text, out string how)
    {
        var hows = new List<string>();
        int n = 1 + (int)(rng.Next() % 3);
        byte[]? raw = null;
        for (int i = 0; i < n; i++)
        {
            List<string> lines = [.. text.Split('\n')];
            int at = (int)(rng.Next() % (ulong)lines.Count);
            switch (rng.Next() % 11)
            {
                case 0:
                    int cut = (int)(rng.Next() % (ulong)Math.Max(text.Length, 1));
                    text = text[..cut];
                    hows.Add(string.Create(CultureInfo.InvariantCulture, $"truncation at {cut}"));
                    continue;
                case 1:
                    lines.RemoveAt(at);
                    hows.Add($"deleting line {at + 1}");
                    break;
                case 2:
                    lines.Insert(at, lines[at]);
                    hows.Add($"duplicating line {at + 1}");
                    break;
                case 3:
                    {
                        int other = (int)(rng.Next() % (ulong)lines.Count);
                        (lines[at], lines[other]) = (lines[other], lines[at]);
                        hows.Add($"swapping lines {at + 1} and {other + 1}");
                        break;
                    }
                case 4 or 5:
                    {
                        // A value of the wrong type, or a huge or malformed number, after some key of the line.
                        string line = lines[at];
                        int colon = line.IndexOf(": ", StringComparison.Ordinal);
                        string value = WrongValues[rng.Next() % (ulong)WrongValues.Length];
                        if (colon > 0)
                        {
                            int end = line.IndexOfAny([',', '}'], colon + 2);
                            lines[at] = line[..(colon + 2)] + value + (end > 0 ? line[end..] : string.Empty);
                        }
                        else
                        {
                            lines[at] = line + " " + value;
                        }
                        hows.Add($"value {value} on line {at + 1}");
                        break;
                    }
                case 6:
                    {
                        string line = lines[at];
                        string indent = line[..(line.Length - line.TrimStart().Length)];
                        lines.Insert(at, indent + "bogus_key_" + (rng.Next() % 100).ToString(CultureInfo.InvariantCulture) + ": 1");
                        hows.Add($"an unknown key at line {at + 1}");
                        break;
                    }
                case 7:
                    {
                        int depth = (int)(rng.Next() % 4) switch { 0 => 31, 1 => 33, 2 => 200, _ => 20000 };
                        string nest = new string('[', depth) + "1" + new string(']', depth);
                        string line = lines[at];
                        int colon = line.IndexOf(": ", StringComparison.Ordinal);
                        lines[at] = colon > 0 ? line[..(colon + 2)] + nest : nest;
                        hows.Add($"nesting {depth} deep on line {at + 1}");
                        break;
                    }
                case 8:
                    {
                        var bomb = new StringBuilder("laughs:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n");
                        for (char c = 'b'; c <= 'j'; c++)
                        {
                            string prev = ((char)(c - 1)).ToString();
                            bomb.Append(CultureInfo.InvariantCulture, $"  {c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n");
                        }
                        lines.Insert(rng.Next() % 2 == 0 ? 0 : at, bomb.ToString().TrimEnd('\n'));
                        hows.Add($"an alias bomb at line {at + 1}");
                        break;
                    }
                case 9:
                    {
                        char[] stray = ['\t', ':', '{', '"', '\0', '\uFFFF', '\u00a0', '#', '-', '&', '*', '|', '>', '\r'];
                        string line = lines[at];
                        int col = (int)(rng.Next() % (ulong)(line.Length + 1));
                        char ch = stray[rng.Next() % (ulong)stray.Length];
                        lines[at] = line[..col] + ch + line[col..];
                        hows.Add(string.Create(CultureInfo.InvariantCulture, $"U+{(int)ch:x4} at {at + 1}:{col + 1}"));
                        break;
                    }
                default:
                    {
                        string line = lines[at];
                        lines[at] = rng.Next() % 2 == 0 ? "  " + line : line.TrimStart();
                        hows.Add($"re-indenting line {at + 1}");
                        break;
                    }
            }
            text = string.Join('\n', lines);
        }
        raw = Encoding.UTF8.GetBytes(text);
        if (rng.Next() % 6 == 0)
        {
            // Invalid UTF-8: only reachable through a file.
            byte[] bad = BadUtf8[rng.Next() % (ulong)BadUtf8.Length];
            int pos = (int)(rng.Next() % (ulong)(raw.Length + 1));
            raw = [.. raw.AsSpan(0, pos), .. bad, .. raw.AsSpan(pos)];
            hows.Add(string.Create(CultureInfo.InvariantCulture, $"invalid UTF-8 at byte {pos}"));
        }
        how = string.Join(", ", hows);
        return raw;
    }
}
