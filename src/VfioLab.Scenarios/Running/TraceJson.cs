using System.Text;
using System.Text.Json;
using VfioLab.Lab;

namespace VfioLab.Scenarios.Running;

/// <summary>One trace event as one JSON line: <c>{"seq":1,"kind":"pin","pid":100,...fields}</c>.</summary>
internal static class TraceJson
{
    public static string Format(LabTraceEvent ev)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", ev.Sequence);
            w.WriteString("kind", ev.Kind);
            w.WriteNumber("pid", ev.Pid);
            foreach (KeyValuePair<string, object> f in ev.Fields)
            {
                switch (f.Value)
                {
                    case bool b:
                        w.WriteBoolean(f.Key, b);
                        break;
                    case int or long or uint or ushort or byte:
                        w.WriteNumber(f.Key, Convert.ToInt64(f.Value, System.Globalization.CultureInfo.InvariantCulture));
                        break;
                    case ulong u:
                        w.WriteString(f.Key, $"0x{u:x}");
                        break;
                    default:
                        w.WriteString(f.Key, Convert.ToString(f.Value, System.Globalization.CultureInfo.InvariantCulture));
                        break;
                }
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
