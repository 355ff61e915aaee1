namespace VfioLab.Cli;

/// <summary>
/// The parsed command line: a verb, positional arguments and <c>--option [value]</c> pairs. Each
/// command's definition says which options it accepts and whether they take a value.
/// </summary>
internal sealed class CommandLine
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);

    private CommandLine(string verb, List<string> positional)
    {
        Verb = verb;
        Positional = positional;
    }

    /// <summary>The command (<c>run</c>, <c>list</c>, ...).</summary>
    public string Verb { get; }

    /// <summary>Arguments that are not options, after the verb.</summary>
    public IReadOnlyList<string> Positional { get; }

    /// <summary>Whether a flag option was given.</summary>
    public bool Has(string option) => _options.ContainsKey(option);

    /// <summary>The value of an option, or null.</summary>
    public string? Value(string option) => _options.GetValueOrDefault(option);

    /// <summary>Parses <paramref name="args"/> against the options a verb accepts (name -> takes a value).
    /// Returns an error message, or null.</summary>
    public static string? TryParse(string[] args, Func<string, IReadOnlyDictionary<string, bool>?> optionsOf, out CommandLine? line)
    {
        line = null;
        if (args.Length == 0)
        {
            return "no command given";
        }
        string verb = args[0];
        IReadOnlyDictionary<string, bool>? accepted = optionsOf(verb);
        if (accepted is null)
        {
            return $"unknown command '{verb}'";
        }
        var result = new CommandLine(verb, []);
        var positional = (List<string>)result.Positional;
        for (int i = 1; i < args.Length; i++)
        {
            string a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal) || a == "--")
            {
                positional.Add(a);
                continue;
            }
            string name = a;
            string? inline = null;
            int eq = a.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                name = a[..eq];
                inline = a[(eq + 1)..];
            }
            if (!accepted.TryGetValue(name, out bool takesValue))
            {
                return $"unknown option '{name}' for '{verb}'";
            }
            if (takesValue)
            {
                if (inline is null)
                {
                    if (i + 1 >= args.Length)
                    {
                        return $"option '{name}' needs a value";
                    }
                    inline = args[++i];
                }
                result._options[name] = inline;
            }
            else
            {
                if (inline is not null)
                {
                    return $"option '{name}' takes no value";
                }
                result._options[name] = null;
            }
        }
        line = result;
        return null;
    }
}
