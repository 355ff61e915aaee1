using VfioLab.Abi;

namespace VfioLab.Scenarios.Model;

/// <summary>
/// The textual forms of scenario values (SCENARIOS.md "Values"), stated once: sizes and
/// addresses (<c>4096</c>, <c>0x1000</c>, <c>4KiB</c>), references (<c>ram</c>, <c>ram+2GiB</c>,
/// <c>ram-0x1000</c>), booleans, hex byte strings, errno names, flag and <c>linux/vfio.h</c> names.
/// Scalars are read as text, never with YAML's own typing.
/// </summary>
internal static class ScalarSyntax
{
    public const string SizeForms = "an integer, 0x hex, or a number with KiB, MiB, GiB or TiB";

    /// <summary>Parses a size or address; <paramref name="error"/> says why not (out of range is distinct from not a number).</summary>
    public static bool TryParseSize(string text, out ulong value, out string? error)
    {
        value = 0;
        ReadOnlySpan<char> s = text.AsSpan().Trim();
        if (s.IsEmpty)
        {
            error = $"expected a size or address ({SizeForms}), got nothing";
            return false;
        }
        bool hex = s.Length > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
        int i = hex ? 2 : 0;
        int digits = 0;
        bool overflow = false;
        ulong acc = 0;
        for (; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '_' && digits > 0 && i + 1 < s.Length && DigitValue(s[i + 1], hex) >= 0)
            {
                continue;
            }
            int d = DigitValue(c, hex);
            if (d < 0)
            {
                break;
            }
            digits++;
            ulong radix = hex ? 16UL : 10UL;
            if (acc > (ulong.MaxValue - (ulong)d) / radix)
            {
                overflow = true;
            }
            else
            {
                acc = (acc * radix) + (ulong)d;
            }
        }
        if (digits == 0)
        {
            error = $"expected a size or address ({SizeForms}), got '{text}'";
            return false;
        }
        ReadOnlySpan<char> unit = s[i..].TrimStart();
        int shift;
        switch (unit)
        {
            case "":
                shift = 0;
                break;
            case "KiB":
                shift = 10;
                break;
            case "MiB":
                shift = 20;
                break;
            case "GiB":
                shift = 30;
                break;
            case "TiB":
                shift = 40;
                break;
            default:
                error = $"expected a size or address ({SizeForms}), got '{text}' (unknown unit '{unit}')";
                return false;
        }
        if (overflow || (shift > 0 && acc > (ulong.MaxValue >> shift)))
        {
            error = $"value out of range: '{text}' does not fit in 64 bits";
            return false;
        }
        value = acc << shift;
        error = null;
        return true;
    }

    /// <summary>A name usable in a value expression and with <c>as:</c>: a letter or underscore, then letters, digits, underscores.</summary>
    public static bool IsIdentifier(ReadOnlySpan<char> s)
    {
        if (s.IsEmpty || !(char.IsAsciiLetter(s[0]) || s[0] == '_'))
        {
            return false;
        }
        foreach (char c in s)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_'))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>true/false/on/off, any case.</summary>
    public static bool TryParseBool(string text, out bool value)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "true":
            case "on":
                value = true;
                return true;
            case "false":
            case "off":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }

    /// <summary>Hex bytes such as <c>"de ad be ef"</c> or <c>"deadbeef"</c>: whitespace-separated groups of an even number of hex digits.</summary>
    public static bool TryParseHexBytes(string text, out byte[] bytes)
    {
        var result = new List<byte>();
        bytes = [];
        foreach (string group in text.Split([' ', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (group.Length % 2 != 0)
            {
                return false;
            }
            for (int i = 0; i < group.Length; i += 2)
            {
                int hi = DigitValue(group[i], hex: true);
                int lo = DigitValue(group[i + 1], hex: true);
                if (hi < 0 || lo < 0)
                {
                    return false;
                }
                result.Add((byte)((hi << 4) | lo));
            }
        }
        bytes = [.. result];
        return true;
    }

    /// <summary>Hex text normalised for comparison: no whitespace, lower case.</summary>
    public static string NormalizeHex(string text)
    {
        var sb = new System.Text.StringBuilder(text.Length);
        foreach (char c in text)
        {
            if (!char.IsWhiteSpace(c))
            {
                sb.Append(char.ToLowerInvariant(c));
            }
        }
        return sb.ToString();
    }

    /// <summary>A Linux errno name (<c>EINVAL</c>), exactly as in C.</summary>
    public static bool TryParseErrno(string text, out Errno errno)
    {
        errno = Errno.None;
        if (text.Length < 2 || text[0] != 'E')
        {
            return false;
        }
        foreach (char c in text)
        {
            if (!(char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c)))
            {
                return false;
            }
        }
        return ErrnoExtensions.TryParse(text, out errno);
    }

    /// <summary>A flag's short name within its struct: <c>READ</c>, <c>GET_DIRTY_BITMAP</c>.</summary>
    public static bool IsFlagName(string text)
    {
        if (text.Length == 0 || !char.IsAsciiLetterUpper(text[0]))
        {
            return false;
        }
        foreach (char c in text)
        {
            if (!(char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c == '_'))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>A <c>linux/vfio.h</c> name: <c>VFIO_TYPE1v2_IOMMU</c>, <c>VFIO_IOMMU_MAP_DMA</c>.</summary>
    public static bool IsVfioName(string text) =>
        text.Length > 5 && text.StartsWith("VFIO_", StringComparison.Ordinal) && IsIdentifier(text);

    private static int DigitValue(char c, bool hex)
    {
        if (c is >= '0' and <= '9')
        {
            return c - '0';
        }
        if (hex && c is >= 'a' and <= 'f')
        {
            return c - 'a' + 10;
        }
        if (hex && c is >= 'A' and <= 'F')
        {
            return c - 'A' + 10;
        }
        return -1;
    }
}
