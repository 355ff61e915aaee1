using System.Diagnostics.Tracing;

namespace VfioLab.Bench;

/// <summary>
/// Which types a phase allocates, from the runtime's GC AllocationTick events (one about every 100 KB allocated, naming
/// the type of the allocation that crossed it): summed per type, so a probe can say where its garbage comes from.
/// Enabled in <c>--shattered-memory</c> with <c>VFIOLAB_BENCH_ALLOCS=1</c>.
/// </summary>
internal sealed class AllocationTicks : EventListener
{
    private const int GcKeyword = 0x1;
    private readonly Dictionary<string, long> _bytes = [];
    private readonly Lock _gate = new();

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, (EventKeywords)GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || eventData.Payload is null)
        {
            return;
        }
        int typeAt = eventData.PayloadNames!.IndexOf("TypeName");
        int amountAt = eventData.PayloadNames.IndexOf("AllocationAmount64");
        if (typeAt < 0 || amountAt < 0)
        {
            return;
        }
        string type = eventData.Payload[typeAt] as string ?? "?";
        long amount = Convert.ToInt64(eventData.Payload[amountAt], System.Globalization.CultureInfo.InvariantCulture);
        lock (_gate)
        {
            _bytes[type] = _bytes.GetValueOrDefault(type) + amount;
        }
    }

    /// <summary>The bytes sampled per type since the last call, largest first, and starts over.</summary>
    public IEnumerable<string> Take(ulong pages)
    {
        KeyValuePair<string, long>[] all;
        lock (_gate)
        {
            all = [.. _bytes.OrderByDescending(kv => kv.Value)];
            _bytes.Clear();
        }
        return all.Take(8).Select(kv => $"  {kv.Key}: {kv.Value / (double)pages:F2} B/page");
    }
}
