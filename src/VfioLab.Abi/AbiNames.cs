using System.Globalization;
using System.Text;

namespace VfioLab.Abi;

/// <summary>
/// The C short names of the ABI's enums, as scenario files and traces write them: a flag or id named within
/// its struct (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>, <c>IOVA_RANGE</c>, <c>BAR0</c>), which is the C macro
/// without its struct prefix. Flag sets are written <c>READ|WRITE</c>.
/// </summary>
/// <remarks>
/// A short name is derived from the member name: <c>GetDirtyBitmap</c> is <c>GET_DIRTY_BITMAP</c>,
/// <c>Nvlink2Ssatgt</c> is <c>NVLINK2_SSATGT</c>. The conformance test checks every derived name against the
/// C macros through <see cref="AbiLayout.Constants"/>. Names are case-sensitive, as in C.
/// </remarks>
public static class AbiNames
{
    /// <summary>The C short name of a single defined value (<c>VADDR</c>), or <see langword="null"/>.</summary>
    public static string? GetName<TEnum>(TEnum value)
        where TEnum : struct, Enum
    {
        ulong bits = ToUInt64(value);
        foreach ((ulong v, string name) in Table<TEnum>.Entries)
        {
            if (v == bits)
            {
                return name;
            }
        }
        return null;
    }

    /// <summary>Every defined value with its C short name, in ascending order of value; a flag enum's zero value is left out.</summary>
    public static IReadOnlyList<KeyValuePair<string, TEnum>> GetEntries<TEnum>()
        where TEnum : struct, Enum => Table<TEnum>.Pairs;

    /// <summary>
    /// Formats a value with C short names: a flag set as <c>READ|WRITE</c> (<c>0</c> when empty, unknown bits as
    /// <c>0x..</c>), any other value as its name or, when undefined, its decimal number.
    /// </summary>
    public static string Format<TEnum>(TEnum value)
        where TEnum : struct, Enum
    {
        ulong bits = ToUInt64(value);
        if (!Table<TEnum>.IsFlags)
        {
            return GetName(value) ?? bits.ToString(CultureInfo.InvariantCulture);
        }
        if (bits == 0)
        {
            return "0";
        }
        var text = new StringBuilder();
        foreach ((ulong v, string name) in Table<TEnum>.Entries)
        {
            if ((bits & v) == v)
            {
                text.Append(text.Length == 0 ? "" : "|").Append(name);
                bits &= ~v;
            }
        }
        if (bits != 0)
        {
            text.Append(text.Length == 0 ? "" : "|").Append(CultureInfo.InvariantCulture, $"0x{bits:x}");
        }
        return text.ToString();
    }

    /// <summary>
    /// Parses C short names: for a flag enum, names or numbers joined by <c>|</c> (spaces allowed around it);
    /// otherwise one name or number. Numbers are decimal or <c>0x</c> hexadecimal.
    /// </summary>
    /// <returns><see langword="false"/> for an unknown name, an empty part, or a number that does not fit.</returns>
    public static bool TryParse<TEnum>(string text, out TEnum value)
        where TEnum : struct, Enum
    {
        value = default;
        ulong bits = 0;
        string[] parts = Table<TEnum>.IsFlags ? text.Split('|') : [text];
        foreach (string raw in parts)
        {
            string part = raw.Trim();
            if (!TryParseOne<TEnum>(part, out ulong one))
            {
                return false;
            }
            bits |= one;
        }
        if (bits > Table<TEnum>.MaxValue)
        {
            return false;
        }
        value = (TEnum)Enum.ToObject(typeof(TEnum), bits);
        return true;
    }

    /// <summary>Converts a member name to its C short name: <c>ContainerSet</c> is <c>CONTAINER_SET</c>.</summary>
    internal static string ToShortName(string memberName)
    {
        var name = new StringBuilder(memberName.Length + 4);
        for (int i = 0; i < memberName.Length; i++)
        {
            char c = memberName[i];
            if (i > 0 && char.IsUpper(c) && (char.IsLower(memberName[i - 1]) || char.IsDigit(memberName[i - 1])))
            {
                name.Append('_');
            }
            name.Append(char.ToUpperInvariant(c));
        }
        return name.ToString();
    }

    private static bool TryParseOne<TEnum>(string part, out ulong bits)
        where TEnum : struct, Enum
    {
        bits = 0;
        if (part.Length == 0)
        {
            return false;
        }
        if (char.IsDigit(part[0]))
        {
            return part.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? ulong.TryParse(part.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out bits)
                : ulong.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out bits);
        }
        foreach ((ulong v, string name) in Table<TEnum>.Entries)
        {
            if (string.Equals(name, part, StringComparison.Ordinal))
            {
                bits = v;
                return true;
            }
        }
        return false;
    }

    private static ulong ToUInt64<TEnum>(TEnum value)
        where TEnum : struct, Enum => Convert.ToUInt64(value, CultureInfo.InvariantCulture);

    /// <summary>The short names of one enum, built once.</summary>
    private static class Table<TEnum>
        where TEnum : struct, Enum
    {
        internal static readonly bool IsFlags = typeof(TEnum).IsDefined(typeof(FlagsAttribute), inherit: false);

        internal static readonly ulong MaxValue = Type.GetTypeCode(typeof(TEnum)) switch
        {
            TypeCode.Byte => byte.MaxValue,
            TypeCode.UInt16 => ushort.MaxValue,
            TypeCode.UInt32 => uint.MaxValue,
            _ => ulong.MaxValue,
        };

        internal static readonly (ulong Value, string Name)[] Entries = Build();

        internal static readonly KeyValuePair<string, TEnum>[] Pairs =
            [.. Entries.Select(e => new KeyValuePair<string, TEnum>(e.Name, (TEnum)Enum.ToObject(typeof(TEnum), e.Value)))];

        private static (ulong, string)[] Build()
        {
            var entries = new List<(ulong, string)>();
            foreach (TEnum member in Enum.GetValues<TEnum>())
            {
                ulong v = ToUInt64(member);
                if (IsFlags && v == 0)
                {
                    continue;
                }
                entries.Add((v, ToShortName(member.ToString())));
            }
            return [.. entries];
        }
    }
}
