using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>
/// The system workqueue in the model's deterministic mode (schedule_work): work items are queued by the
/// layers (a backend's deferred notifier unregistration, seed 003) and run only when the host says so,
/// so a scenario can observe the state between queueing and running.
/// </summary>
/// <remarks>Lock: <c>_gate</c> protects <c>_items</c> (a leaf). Items run outside it, in queue order; an
/// item queued while others run runs in the same call.</remarks>
internal sealed class DeferredWorkQueue(TraceLog trace)
{
    private readonly Lock _gate = new();
    private readonly Queue<(string Name, Action Work)> _items = new();

    /// <summary>Items queued and not yet run.</summary>
    public int Pending
    {
        get
        {
            lock (_gate)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>Queues <paramref name="work"/> under <paramref name="name"/> (for traces).</summary>
    public void Queue(string name, Action work)
    {
        lock (_gate)
        {
            _items.Enqueue((name, work));
        }
        if (trace.Enabled)
        {
            trace.Emit(TraceKind.WorkQueued, 0, TraceLog.F("work", name));
        }
    }

    /// <summary>Runs every queued item, including those queued meanwhile; returns how many ran.</summary>
    public int RunAll()
    {
        int ran = 0;
        while (true)
        {
            (string Name, Action Work) item;
            lock (_gate)
            {
                if (!_items.TryDequeue(out item))
                {
                    return ran;
                }
            }
            if (trace.Enabled)
            {
                trace.Emit(TraceKind.WorkRun, 0, TraceLog.F("work", item.Name));
            }
            item.Work();
            ran++;
        }
    }
}
