using System.Globalization;

namespace VfioLab.Scenarios.Model;

/// <summary>
/// Compares an <c>expect:</c> field map with what a step returned. Only the keys the expectation
/// names are compared, recursively: numbers numerically in any size form (<c>{ size: 2GiB }</c>
/// matches 2147483648) and, when a lookup is given, as <c>as:</c> references; an errno name matches
/// the errno's number or name; booleans as true/false/on/off; bytes as hex ignoring spaces and
/// case; lists element by element; a flags field also as the list of its flag names (<c>[PGSIZES, CAPS]</c>:
/// exactly those flags set).
/// </summary>
internal static class ExpectMatcher
{
    /// <summary>The mismatches, each <c>FILE:LINE:COLUMN: expect PATH: ...</c>; empty when everything named matches.</summary>
    public static IReadOnlyList<string> Match(ScenarioNode expected, StepResult actual, Func<string, ulong?>? lookup = null)
    {
        var mismatches = new List<string>();
        if (!expected.IsMap)
        {
            mismatches.Add($"{expected.Location}: expect: expected a map of result fields, got {expected.Describe()}");
            return mismatches;
        }
        CompareMap(expected, actual.Fields, "", mismatches, lookup);
        return mismatches;
    }

    private static void CompareMap(ScenarioNode expected, IReadOnlyDictionary<string, ResultValue> actual, string path,
        List<string> mismatches, Func<string, ulong?>? lookup)
    {
        foreach (ScenarioNodeEntry entry in expected.Entries)
        {
            string childPath = path.Length == 0 ? entry.Key : $"{path}.{entry.Key}";
            if (!actual.TryGetValue(entry.Key, out ResultValue? value))
            {
                string available = actual.Count == 0 ? "nothing" : string.Join(", ", actual.Keys.Order(StringComparer.Ordinal));
                mismatches.Add($"{entry.KeyLocation}: expect {childPath}: the step returned no '{entry.Key}' (it returned: {available})");
                continue;
            }
            Compare(entry.Value, value, childPath, mismatches, lookup);
        }
    }

    private static void Compare(ScenarioNode expected, ResultValue actual, string path, List<string> mismatches, Func<string, ulong?>? lookup)
    {
        string? problem = actual.Kind switch
        {
            ResultValueKind.List => CompareList(expected, actual, path, mismatches, lookup),
            ResultValueKind.Map => CompareNestedMap(expected, actual, path, mismatches, lookup),
            ResultValueKind.Unsigned when expected.IsSequence && actual.ParseFlag is not null => CompareFlags(expected, actual),
            _ when !expected.IsScalar => $"expected {expected.Describe()}, got {actual}",
            ResultValueKind.Unsigned => CompareUnsigned(expected.Text, actual.Unsigned, expected.Location, lookup),
            ResultValueKind.Signed => CompareSigned(expected.Text, actual.Signed),
            ResultValueKind.Bool => ScalarSyntax.TryParseBool(expected.Text, out bool b)
                ? (b == actual.Bool ? null : $"expected {expected.Text}, got {actual}")
                : $"expected a boolean, got '{expected.Text}' (the result is {actual})",
            ResultValueKind.Bytes => ScalarSyntax.NormalizeHex(expected.Text) == actual.Text
                ? null
                : $"expected \"{expected.Text}\", got {actual}",
            _ => expected.Text.Trim() == actual.Text ? null : $"expected '{expected.Text}', got '{actual.Text}'",
        };
        if (problem is not null)
        {
            mismatches.Add($"{expected.Location}: expect {path}: {problem}");
        }
    }

    private static string? CompareList(ScenarioNode expected, ResultValue actual, string path, List<string> mismatches, Func<string, ulong?>? lookup)
    {
        if (!expected.IsSequence)
        {
            return $"expected {expected.Describe()}, got a list {actual}";
        }
        if (expected.Items.Count != actual.Items.Count)
        {
            return $"expected {expected.Items.Count} items, got {actual.Items.Count}: {actual}";
        }
        for (int i = 0; i < expected.Items.Count; i++)
        {
            Compare(expected.Items[i], actual.Items[i], $"{path}[{i}]", mismatches, lookup);
        }
        return null;
    }

    private static string? CompareFlags(ScenarioNode expected, ResultValue actual)
    {
        ulong want = 0;
        foreach (ScenarioNode item in expected.Items)
        {
            ulong? bits = item.IsScalar ? actual.ParseFlag!(item.Text) : null;
            if (bits is null)
            {
                return $"expected a list of flag names, got {item.Describe()} (the result is {actual})";
            }
            want |= bits.Value;
        }
        return want == actual.Unsigned ? null : $"expected [{string.Join(", ", expected.Items.Select(i => i.Text))}] (0x{want:x}), got {actual}";
    }

    private static string? CompareNestedMap(ScenarioNode expected, ResultValue actual, string path, List<string> mismatches, Func<string, ulong?>? lookup)
    {
        if (!expected.IsMap)
        {
            return $"expected {expected.Describe()}, got a map {actual}";
        }
        CompareMap(expected, actual.Fields, path, mismatches, lookup);
        return null;
    }

    private static string? CompareUnsigned(string text, ulong actual, SourceLocation location, Func<string, ulong?>? lookup)
    {
        if (ScalarSyntax.TryParseErrno(text.Trim(), out Abi.Errno errno))
        {
            return (ulong)errno == actual ? null : $"expected {text} ({(int)errno}), got {actual}";
        }
        if (!ScenarioValue.TryParse(text, location, lookup is not null, out ScenarioValue value, out string? error))
        {
            return $"{error} (the result is 0x{actual:x})";
        }
        if (!value.TryResolve(lookup ?? (_ => null), out ulong want, out error))
        {
            return error;
        }
        return want == actual ? null : $"expected {text} (0x{want:x}), got 0x{actual:x}";
    }

    private static string? CompareSigned(string text, long actual)
    {
        string t = text.Trim();
        if (ScalarSyntax.TryParseErrno(t, out Abi.Errno errno))
        {
            return actual == (long)errno || actual == -(long)errno ? null : $"expected {t} ({(int)errno}), got {actual}";
        }
        bool negative = t.StartsWith('-');
        if (!ScalarSyntax.TryParseSize(negative ? t[1..] : t, out ulong magnitude, out string? error))
        {
            return $"{error} (the result is {actual})";
        }
        bool equal = negative
            ? actual <= 0 && (ulong)(-(actual + 1)) + 1 == magnitude
            : actual >= 0 && (ulong)actual == magnitude;
        return equal ? null : $"expected {t}, got {actual.ToString(CultureInfo.InvariantCulture)}";
    }
}
