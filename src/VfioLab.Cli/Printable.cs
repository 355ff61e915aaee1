using System.Globalization;
using System.Text;

namespace VfioLab.Cli;

/// <summary>Makes a string that a scenario file or a command line controls safe to print on a terminal: every
/// control character (C0 but tab, DEL, C1) becomes a visible escape (<c>\x1b</c>, <c>\n</c>, <c>\u009b</c>), so a
/// name, path or message cannot move the cursor, clear or retitle the terminal, or forge a line of the report.</summary>
internal static class Printable
{
    /// <summary><paramref name="text"/> with its control characters escaped; unchanged (the same instance) when it has none.</summary>
    public static string Escape(string text)
    {
        int first = IndexOfControl(text);
        if (first < 0)
        {
            return text;
        }
        var sb = new StringBuilder(text.Length + 8);
        sb.Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            char c = text[i];
            if (!IsControl(c))
            {
                sb.Append(c);
                continue;
            }
            sb.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                _ when c < 0x80 => string.Create(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}"),
                _ => string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
            });
        }
        return sb.ToString();
    }

    private static int IndexOfControl(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (IsControl(text[i]))
            {
                return i;
            }
        }
        return -1;
    }

    private static bool IsControl(char c) => c != '\t' && (c < 0x20 || c is >= '\u007f' and <= '\u009f');
}
