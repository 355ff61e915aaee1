using VfioLab.Abi;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>Typed reads of scalar and list nodes with located errors; <c>what</c> names the field in messages.</summary>
internal static class NodeRead
{
    public static string Scalar(ScenarioNode node, string what)
    {
        if (!node.IsScalar || node.IsNull)
        {
            return ScenarioThrowHelper.ThrowParse<string>(node.Location, $"{what}: expected a scalar, got {node.Describe()}");
        }
        return node.Text;
    }

    public static string NonEmpty(ScenarioNode node, string what)
    {
        string text = Scalar(node, what).Trim();
        return text.Length > 0 ? text : ScenarioThrowHelper.ThrowParse<string>(node.Location, $"{what}: must not be empty");
    }

    public static ulong Size(ScenarioNode node, string what)
    {
        string text = Scalar(node, what);
        if (!ScalarSyntax.TryParseSize(text, out ulong value, out string? error))
        {
            ScenarioThrowHelper.ThrowParse(node.Location, $"{what}: {error}");
        }
        return value;
    }

    public static ScenarioValue Value(ScenarioNode node, string what, bool allowReference)
    {
        string text = Scalar(node, what);
        if (!ScenarioValue.TryParse(text, node.Location, allowReference, out ScenarioValue value, out string? error))
        {
            ScenarioThrowHelper.ThrowParse(node.Location, $"{what}: {error}");
        }
        return value;
    }

    public static ulong PowerOfTwo(ScenarioNode node, string what)
    {
        ulong value = Size(node, what);
        return value != 0 && (value & (value - 1)) == 0
            ? value
            : ScenarioThrowHelper.ThrowParse<ulong>(node.Location, $"{what}: 0x{value:x} is not a power of two");
    }

    public static int Int(ScenarioNode node, string what, int max)
    {
        ulong value = Size(node, what);
        return value <= (ulong)max
            ? (int)value
            : ScenarioThrowHelper.ThrowParse<int>(node.Location, $"value out of range: {what} must be at most {max}, got {value}");
    }

    public static bool Bool(ScenarioNode node, string what)
    {
        string text = Scalar(node, what);
        return ScalarSyntax.TryParseBool(text, out bool value)
            ? value
            : ScenarioThrowHelper.ThrowParse<bool>(node.Location, $"{what}: expected true, false, on or off, got '{text}'");
    }

    public static T Choice<T>(ScenarioNode node, string what, IReadOnlyDictionary<string, T> table)
    {
        string text = Scalar(node, what);
        return table.TryGetValue(text, out T? value)
            ? value
            : ScenarioThrowHelper.ThrowParse<T>(node.Location, $"{what}: unknown value '{text}'; allowed: {string.Join(", ", table.Keys)}");
    }

    public static string Word(ScenarioNode node, string what, IReadOnlyList<string> allowed)
    {
        string text = Scalar(node, what);
        return allowed.Contains(text, StringComparer.Ordinal)
            ? text
            : ScenarioThrowHelper.ThrowParse<string>(node.Location, $"{what}: unknown value '{text}'; allowed: {string.Join(", ", allowed)}");
    }

    public static Errno Errno(ScenarioNode node, string what)
    {
        string text = Scalar(node, what);
        return ScalarSyntax.TryParseErrno(text, out Errno errno)
            ? errno
            : ScenarioThrowHelper.ThrowParse<Errno>(node.Location, $"{what}: unknown errno name '{text}'");
    }

    /// <summary>A list node; an unquoted null reads as an empty list.</summary>
    public static IReadOnlyList<ScenarioNode> List(ScenarioNode? node, string what)
    {
        if (node is null || node.IsNull)
        {
            return [];
        }
        return node.IsSequence
            ? node.Items
            : ScenarioThrowHelper.ThrowParse<IReadOnlyList<ScenarioNode>>(node.Location, $"{what}: expected a list, got {node.Describe()}");
    }

    public static IReadOnlyList<ulong> PageSizes(ScenarioNode node, string what)
    {
        IReadOnlyList<ScenarioNode> items = List(node, what);
        if (items.Count == 0)
        {
            ScenarioThrowHelper.ThrowParse(node.Location, $"{what}: expected at least one page size");
        }
        var sizes = new List<ulong>(items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            sizes.Add(PowerOfTwo(items[i], $"{what}[{i}]"));
        }
        return sizes;
    }
}
