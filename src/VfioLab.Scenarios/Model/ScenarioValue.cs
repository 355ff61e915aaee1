using System.Globalization;

namespace VfioLab.Scenarios.Model;

/// <summary>
/// A size or address as written in a scenario: a literal, or a name bound with <c>as:</c> plus
/// or minus an offset (<c>ram+2GiB</c>), kept unresolved until the runner knows the name's value.
/// </summary>
internal readonly record struct ScenarioValue
{
    private ScenarioValue(ulong literal, string? reference, ulong offset, bool negativeOffset, SourceLocation location)
    {
        Literal = literal;
        Reference = reference;
        Offset = offset;
        NegativeOffset = negativeOffset;
        Location = location;
    }

    /// <summary>The value when <see cref="Reference"/> is null.</summary>
    public ulong Literal { get; }

    /// <summary>The bound name, or null for a literal.</summary>
    public string? Reference { get; }

    /// <summary>The offset added to (or, with <see cref="NegativeOffset"/>, subtracted from) the name's value.</summary>
    public ulong Offset { get; }

    public bool NegativeOffset { get; }

    public SourceLocation Location { get; }

    public bool IsReference => Reference is not null;

    public static ScenarioValue FromLiteral(ulong value, SourceLocation location) => new(value, null, 0, false, location);

    public static ScenarioValue FromReference(string name, ulong offset, bool negativeOffset, SourceLocation location) =>
        new(0, name, offset, negativeOffset, location);

    /// <summary>Parses a literal size or a reference expression (<c>name</c>, <c>name+OFFSET</c>, <c>name-OFFSET</c>).</summary>
    public static bool TryParse(string text, SourceLocation location, bool allowReference, out ScenarioValue value, out string? error)
    {
        value = default;
        string s = text.Trim();
        if (s.Length > 0 && (char.IsAsciiLetter(s[0]) || s[0] == '_'))
        {
            int end = 0;
            while (end < s.Length && (char.IsAsciiLetterOrDigit(s[end]) || s[end] == '_'))
            {
                end++;
            }
            string name = s[..end];
            if (!allowReference)
            {
                error = $"expected a number ({ScalarSyntax.SizeForms}), got '{text}'";
                return false;
            }
            string rest = s[end..].TrimStart();
            if (rest.Length == 0)
            {
                value = FromReference(name, 0, false, location);
                error = null;
                return true;
            }
            if (rest[0] is not ('+' or '-'))
            {
                error = $"expected NAME, NAME+OFFSET or NAME-OFFSET, got '{text}'";
                return false;
            }
            if (!ScalarSyntax.TryParseSize(rest[1..], out ulong offset, out string? offsetError))
            {
                error = $"bad offset in '{text}': {offsetError}";
                return false;
            }
            value = FromReference(name, offset, rest[0] == '-', location);
            error = null;
            return true;
        }
        if (!ScalarSyntax.TryParseSize(s, out ulong literal, out error))
        {
            if (allowReference && s.Length > 0 && char.IsAsciiDigit(s[0]) && error is not null && !error.StartsWith("value out of range", StringComparison.Ordinal))
            {
                error += "; a reference is NAME, NAME+OFFSET or NAME-OFFSET";
            }
            return false;
        }
        value = FromLiteral(literal, location);
        return true;
    }

    /// <summary>The value, looking a reference up; null from <paramref name="lookup"/> means the name is unknown.</summary>
    /// <exception cref="ScenarioParseException">The name is unknown, or the offset carries it past 0 or 2^64-1.</exception>
    public ulong Resolve(Func<string, ulong?> lookup)
    {
        if (!TryResolve(lookup, out ulong value, out string? error))
        {
            ScenarioThrowHelper.ThrowParse(Location, error!);
        }
        return value;
    }

    public bool TryResolve(Func<string, ulong?> lookup, out ulong value, out string? error)
    {
        value = Literal;
        error = null;
        if (Reference is null)
        {
            return true;
        }
        ulong? bound = lookup(Reference);
        if (bound is not ulong b)
        {
            error = $"unknown name '{Reference}'";
            return false;
        }
        if (NegativeOffset ? b < Offset : ulong.MaxValue - b < Offset)
        {
            error = $"value out of range: {this} with {Reference} = 0x{b:x} does not fit in 64 bits";
            return false;
        }
        value = NegativeOffset ? b - Offset : b + Offset;
        return true;
    }

    public override string ToString()
    {
        if (Reference is null)
        {
            return "0x" + Literal.ToString("x", CultureInfo.InvariantCulture);
        }
        if (Offset == 0)
        {
            return Reference;
        }
        return $"{Reference}{(NegativeOffset ? '-' : '+')}0x{Offset.ToString("x", CultureInfo.InvariantCulture)}";
    }
}
