using System.Text;
using System.Text.Json;
using VfioLab.Lab;

namespace VfioLab.Scenarios.Running;

/// <summary>
/// One trace event as one JSON line (docs/schemas/trace-event.schema.json):
/// <c>{"seq":1,"kind":"syscall","pid":100,"step":0,"at":"f.yaml:9:5","call":"open",...fields}</c>. The envelope
/// comes first (<c>step</c> and <c>at</c> only while a scenario step runs); the event's fields follow, written by
/// <see cref="JsonValues"/>; an errno that is none is left out. A field may not repeat a name already written.
/// </summary>
internal static class TraceJson
{
    private static readonly string[] Envelope = ["seq", "kind", "pid", "step", "at"];

    // Paths and messages are written as they are (<built-in>/x.yaml, not \u003Cbuilt-in\u003E): a trace line is
    // read by people and JSON tools, never embedded in HTML.
    private static readonly JsonWriterOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Format(LabTraceEvent ev, TraceStep? step = null) => Format(ev.Sequence, ev.Kind, ev.Pid, ev.Fields, step);

    /// <exception cref="InvalidOperationException">A field repeats a name (a bug in the event's emitter).</exception>
    public static string Format(long sequence, string kind, int pid, IReadOnlyList<KeyValuePair<string, object>> fields, TraceStep? step)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, Options))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", sequence);
            w.WriteString("kind", kind);
            w.WriteNumber("pid", pid);
            if (step is { } s)
            {
                w.WriteNumber("step", s.Index);
                w.WriteString("at", s.Location.ToString());
            }
            var written = new HashSet<string>(Envelope, StringComparer.Ordinal);
            foreach (KeyValuePair<string, object> f in fields)
            {
                if (JsonValues.IsNothing(f.Key, f.Value))
                {
                    continue;
                }
                if (!written.Add(f.Key))
                {
                    Model.ScenarioThrowHelper.ThrowInvalidOperation<bool>($"trace event '{kind}' has a second field '{f.Key}'");
                }
                w.WritePropertyName(f.Key);
                JsonValues.WriteObject(w, f.Key, f.Value);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
