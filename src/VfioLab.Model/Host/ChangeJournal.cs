namespace VfioLab.Host;

/// <summary>
/// What changed in the host since the invariant checker last looked, as cheaply as it can be said: either
/// "anything" (wide) or a list of (type1 container, IOVA range) that MAP_DMA and UNMAP_DMA declared. The
/// incremental check (Checks/InvariantChecker.Incremental.cs) re-checks only the declared range when the one call
/// since the last check declared one (several such calls are recorded, and make it a full sweep); anything else makes
/// the next check a full sweep. Its observer (<see cref="Observe"/>) is told of that range before the call runs.
/// </summary>
/// <remarks>
/// Sound by default: a call counts as narrow only when it ended (<see cref="EndCall"/>, from the lab's system-call
/// surface) having declared exactly one range; a call that declared nothing (open, close, mmap, any other ioctl,
/// sPAPR, a query) makes the journal wide, and so does every lab entry point that is not a system call
/// (<see cref="MarkWide"/>: device DMA, release, unplug, deferred work, fork, exit, limits). Nothing is kept per
/// page: one entry per call, cleared by each check. Thread-safe.
/// </remarks>
internal sealed class ChangeJournal
{
    /// <summary>Declared ranges kept between two checks. Past this the next check is a full sweep anyway (so many
    /// windows cost about as much), and the record stops growing: with no checker taking it (checks off, a library
    /// user who never checks, a benchmark) the journal must stay bounded, not hold one entry per call forever.</summary>
    internal const int MaxRanges = 64;

    private readonly Lock _gate = new();
    private readonly List<(int Container, ulong Start, ulong Last)> _ranges = [];
    private int _declared;
    private int _calls;
    private bool _wide = true;
    private Action<int, ulong, ulong>? _observer;

    /// <summary>Who is told of the first range declared since the last <see cref="TryTakeNarrow"/>, before the call
    /// changes anything (null: nobody). The incremental checker reads there what the range held before the call, so it
    /// can keep its sums over every mapping as running totals. Called on the caller's thread with no lock of the
    /// journal held. One observer per host: <paramref name="replace"/> takes the place of another; otherwise the
    /// observer is installed only when there is none.</summary>
    public void Observe(Action<int, ulong, ulong> observer, bool replace)
    {
        if (replace)
        {
            Volatile.Write(ref _observer, observer);
        }
        else
        {
            Interlocked.CompareExchange(ref _observer, observer, null);
        }
    }

    /// <summary>A type1 MAP_DMA or UNMAP_DMA of container <paramref name="container"/> is about to change
    /// <c>[start, last]</c> of its IOVA space and nothing outside it (its mappings, IOPTEs, pins, the
    /// caller's and owners' charges).</summary>
    public void DeclareType1(int container, ulong start, ulong last)
    {
        // Wide until the next check: nothing to record, and no lock round trip to find that out (issue 16's 4 KiB
        // pair, where nobody checks and the journal stays wide). One skipped while a check resets the journal leaves
        // its call counted and its range not, so the next check is a full sweep: still sound.
        if (Volatile.Read(ref _wide))
        {
            return;
        }
        bool first;
        lock (_gate)
        {
            if (_wide)
            {
                return; // the next check sweeps everything: nothing to record until it has run
            }
            if (_ranges.Count == MaxRanges)
            {
                _wide = true;
                _ranges.Clear();
                return;
            }
            _ranges.Add((container, start, last));
            _declared++;
            // Only a lone range can be checked narrowly (a call that came before it and declared nothing, or a second
            // range, makes the next check the full sweep): only then is the observer told.
            first = _ranges.Count == 1 && _calls == 0;
        }
        if (first)
        {
            Volatile.Read(ref _observer)?.Invoke(container, start, last);
        }
    }

    /// <summary>A system call of the lab's surface returned.</summary>
    public void EndCall()
    {
        lock (_gate)
        {
            _calls++;
        }
    }

    /// <summary>Something changed that no range describes: the next check sweeps everything.</summary>
    public void MarkWide()
    {
        lock (_gate)
        {
            _wide = true;
            _ranges.Clear();
        }
    }

    /// <summary>How many declared ranges the journal holds now (for tests: it never exceeds <see cref="MaxRanges"/>).</summary>
    internal int RangeCount
    {
        get
        {
            lock (_gate)
            {
                return _ranges.Count;
            }
        }
    }

    /// <summary>Takes what was recorded and starts a new record. Returns false when the next check must be a full
    /// sweep (anything wide, a call that declared no range or more than one, nothing recorded at all); otherwise
    /// <paramref name="ranges"/> holds the declared ranges.</summary>
    public bool TryTakeNarrow(List<(int Container, ulong Start, ulong Last)> ranges)
    {
        lock (_gate)
        {
            bool narrow = !_wide && _calls > 0 && _declared == _calls;
            if (narrow)
            {
                ranges.AddRange(_ranges);
            }
            _ranges.Clear();
            _declared = 0;
            _calls = 0;
            _wide = false;
            return narrow;
        }
    }
}
