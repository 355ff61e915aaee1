namespace VfioLab.Diagnostics;

/// <summary>
/// The model's event stream. Every layer emits into the one log of its host; listeners (the CLI's
/// JSON-lines writer, tests) subscribe. When nobody listens, <see cref="Enabled"/> is false and
/// callers skip building events, so tracing costs nothing on hot paths.
/// </summary>
/// <remarks>Thread-safe: emission takes a private lock so sequence numbers are dense and ordered.</remarks>
internal sealed class TraceLog
{
    private readonly object _gate = new();
    private readonly List<Action<TraceEvent>> _listeners = [];
    private long _sequence;

    /// <summary>Whether any listener is subscribed.</summary>
    public bool Enabled { get; private set; }

    /// <summary>Adds a listener that receives every later event.</summary>
    public void Subscribe(Action<TraceEvent> listener)
    {
        lock (_gate)
        {
            _listeners.Add(listener);
            Enabled = true;
        }
    }

    /// <summary>Emits one event. <paramref name="pid"/> is 0 for events not caused by a process.</summary>
    public void Emit(TraceKind kind, int pid, params KeyValuePair<string, object>[] fields)
    {
        if (!Enabled)
        {
            return;
        }
        lock (_gate)
        {
            var ev = new TraceEvent(++_sequence, kind.Name, pid, fields);
            foreach (Action<TraceEvent> l in _listeners)
            {
                l(ev);
            }
        }
    }

    /// <summary>Shorthand for a field.</summary>
    public static KeyValuePair<string, object> F(string name, object value) => new(name, value);

    /// <summary>Adds why a call failed to its event's fields: <c>refused_by</c> (the kernel check), <c>reason</c> and, when
    /// the refusal depends on a profile or commit, <c>source</c>; nothing when no check explained it.</summary>
    public static void AddRefusal(List<KeyValuePair<string, object>> fields, Refusal refusal)
    {
        if (!refusal.IsSet)
        {
            return;
        }
        fields.Add(F("refused_by", refusal.Check));
        fields.Add(F("reason", refusal.Reason));
        if (refusal.Source is not null)
        {
            fields.Add(F("source", refusal.Source));
        }
    }

    /// <summary>An event of one container: <c>container</c> first, then <paramref name="fields"/> (both backends
    /// trace this way). Free when tracing is off.</summary>
    public void EmitForContainer(TraceKind kind, int pid, int container, KeyValuePair<string, object>[] fields)
    {
        if (!Enabled)
        {
            return;
        }
        var all = new KeyValuePair<string, object>[fields.Length + 1];
        all[0] = F("container", container);
        fields.CopyTo(all, 1);
        Emit(kind, pid, all);
    }
}
