using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json;

namespace VfioLab.Scenarios.Running;

/// <summary>
/// The one value convention of the JSON VfioLab writes (trace lines, <c>run --json</c>), stated in
/// docs/schemas/: an integer is a lower-case hex string <c>"0x…"</c> (<c>"-0x…"</c> when negative) when its field
/// holds an address, a size in bytes, an offset, a page frame, an ioctl argument or a flag word — the names in
/// <see cref="HexNames"/>, or ending in one of <see cref="HexSuffixes"/> — and a JSON number otherwise (counts, pages,
/// fds, pids, indexes, return values); errnos are their names; booleans are booleans; everything else is a string.
/// The rule goes by the field's name, never by the C# type that happened to carry the value.
/// </summary>
internal static class JsonValues
{
    /// <summary>Field names whose integers are written in hex.</summary>
    public static FrozenSet<string> HexNames { get; } = FrozenSet.ToFrozenSet(
    [
        "iova", "vaddr", "addr", "address", "phys", "ua", "pfn", "start", "last", "end",
        "size", "length", "mapped", "unmapped", "copied", "argsz", "pgsize",
        "offset", "pgoff", "arg", "request", "flags", "prot",
    ], StringComparer.Ordinal);

    /// <summary>Name endings whose integers are written in hex (<c>cap_offset</c>, <c>window_size</c>, <c>iova_pgsizes</c>).</summary>
    public static IReadOnlyList<string> HexSuffixes { get; } = ["_addr", "_start", "_size", "_offset", "_flags", "_bitmap", "_pgsizes"];

    /// <summary>Whether integers of the field <paramref name="name"/> are written in hex.</summary>
    public static bool IsHex(string name)
    {
        if (HexNames.Contains(name))
        {
            return true;
        }
        foreach (string suffix in HexSuffixes)
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary><c>0x</c> and lower-case hex digits.</summary>
    public static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>Writes an unsigned integer of field <paramref name="name"/> as a value (the property name already written).</summary>
    public static void WriteUnsigned(Utf8JsonWriter w, string name, ulong value)
    {
        if (IsHex(name))
        {
            w.WriteStringValue(Hex(value));
        }
        else
        {
            w.WriteNumberValue(value);
        }
    }

    /// <summary>Writes a signed integer of field <paramref name="name"/> as a value (the property name already written).</summary>
    public static void WriteSigned(Utf8JsonWriter w, string name, long value)
    {
        if (!IsHex(name))
        {
            w.WriteNumberValue(value);
        }
        else if (value < 0)
        {
            w.WriteStringValue("-" + Hex(unchecked((ulong)-(value + 1)) + 1));
        }
        else
        {
            w.WriteStringValue(Hex((ulong)value));
        }
    }

    /// <summary>Whether a trace field's value means "nothing" and is left out: an errno that is none (emitters pass
    /// <c>Errno.None</c> or its name for a step that succeeded).</summary>
    public static bool IsNothing(string name, object value) =>
        value is Abi.Errno.None || (name == "errno" && value is string s && s == nameof(Abi.Errno.None));

    /// <summary>Writes a trace field's value (the property name already written).</summary>
    public static void WriteObject(Utf8JsonWriter w, string name, object value)
    {
        switch (value)
        {
            case bool b:
                w.WriteBooleanValue(b);
                break;
            case Abi.Errno errno:
                w.WriteStringValue(errno.ToString());
                break;
            case Enum e when e.GetType().IsDefined(typeof(FlagsAttribute), false):
                WriteUnsigned(w, name, Convert.ToUInt64(e, CultureInfo.InvariantCulture));
                break;
            case Enum e:
                w.WriteStringValue(e.ToString());
                break;
            case ulong u:
                WriteUnsigned(w, name, u);
                break;
            case uint or ushort or byte:
                WriteUnsigned(w, name, Convert.ToUInt64(value, CultureInfo.InvariantCulture));
                break;
            case long or int or short or sbyte:
                WriteSigned(w, name, Convert.ToInt64(value, CultureInfo.InvariantCulture));
                break;
            default:
                w.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }
}
