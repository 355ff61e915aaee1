namespace VfioLab.Host;

/// <summary>
/// What changed in the host since the invariant checker last looked, as cheaply as it can be said: either
/// "anything" (wide) or a list of (type1 container, IOVA range) that MAP_DMA and UNMAP_DMA declared (a MAP_DMA that
/// linked its mapping counts that under its container's lock instead: Type1Context.DeclareLinked). The
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

    // A spin gate, not a Lock: MAP_DMA takes it once and every check once (issue 16); the sections are a few stores.
    private SpinGate _gate;
    private readonly List<(int Container, ulong Start, ulong Last)> _ranges = [];
    private int _declared;
    private int _calls;

    // _calls as the last take saw it (under the gate): the calls of a record are the difference, read without a second
    // atomic operation (an int that wraps still subtracts right).
    private int _callsTaken;
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
            // Every check says so: a reference stored only when it changes (no write barrier per check, issue 16).
            if (!ReferenceEquals(Volatile.Read(ref _observer), observer))
            {
                Volatile.Write(ref _observer, observer);
            }
        }
        else
        {
            Interlocked.CompareExchange(ref _observer, observer, null);
        }
    }

    /// <summary>A type1 MAP_DMA (with VADDR) or UNMAP_DMA of container <paramref name="container"/> is about to change
    /// <c>[start, last]</c> of its IOVA space and nothing outside it (its mappings, IOPTEs, pins, the
    /// caller's and owners' charges); the observer is told when it is the lone range since the last take. A MAP that
    /// links a new mapping declares nothing here: type1 counts its link under its container's lock
    /// (Type1Context.DeclareLinked), and the range held nothing before it.</summary>
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
        _gate.Enter();
        try
        {
            if (!TryRecordLocked(container, start, last))
            {
                return;
            }
            // Only a lone range can be checked narrowly (a call that came before it and declared nothing, or a second
            // range, makes the next check the full sweep): only then is the observer told.
            first = _ranges.Count == 1 && Volatile.Read(ref _calls) == _callsTaken;
        }
        finally
        {
            _gate.Exit();
        }
        if (first)
        {
            Volatile.Read(ref _observer)?.Invoke(container, start, last);
        }
    }

    // Records a declared range (gate held); false when the journal is wide or became so (too many ranges).
    private bool TryRecordLocked(int container, ulong start, ulong last)
    {
        if (_wide)
        {
            return false; // the next check sweeps everything: nothing to record until it has run
        }
        if (_ranges.Count == MaxRanges)
        {
            _wide = true;
            _ranges.Clear();
            return false;
        }
        _ranges.Add((container, start, last));
        _declared++;
        return true;
    }

    /// <summary>Whether a checker may take a narrow record next (the journal is not wide): what a call hands over for it
    /// is worth recording only then.</summary>
    public bool Watched => !Volatile.Read(ref _wide);

    /// <summary>A system call of the lab's surface returned. No lock: a running count, of which
    /// <see cref="TryTakeNarrow"/> takes what was added since the last
    /// take (a call ending while a check takes the record counts in this record or the next, as under a lock).</summary>
    public void EndCall() => Interlocked.Increment(ref _calls);

    /// <summary>Something changed that no range describes: the next check sweeps everything.</summary>
    public void MarkWide()
    {
        _gate.Enter();
        try
        {
            _wide = true;
            _ranges.Clear();
        }
        finally
        {
            _gate.Exit();
        }
    }

    /// <summary>How many declared ranges the journal holds now (for tests: it never exceeds <see cref="MaxRanges"/>).</summary>
    internal int RangeCount
    {
        get
        {
            _gate.Enter();
            try
            {
                return _ranges.Count;
            }
            finally
            {
                _gate.Exit();
            }
        }
    }

    /// <summary>Takes what was recorded and starts a new record. Returns false when the next check must be a full
    /// sweep (anything wide, a call that declared no range or more than one, nothing recorded at all); otherwise
    /// <paramref name="ranges"/> holds the declared ranges.</summary>
    public bool TryTakeNarrow(List<(int Container, ulong Start, ulong Last)> ranges)
    {
        int first = ranges.Count;
        bool narrow = TryTakeRecord(ranges, out int calls) && calls > 0 && ranges.Count - first == calls;
        if (!narrow)
        {
            ranges.RemoveRange(first, ranges.Count - first);
        }
        return narrow;
    }

    /// <summary>Takes what was recorded and starts a new record: false when the journal was wide (the next check sweeps);
    /// otherwise <paramref name="calls"/> is how many system calls ended since the last take and <paramref name="ranges"/>
    /// has the ranges they declared appended. What type1's MAP_DMA counts under its container's lock instead
    /// (Type1Context.DeclareLinked) the caller adds, read after this.</summary>
    /// <remarks>When nothing was recorded since the last take and the journal is not wide (a run of MAP_DMA calls that
    /// linked, each checked: issue 16), only the count of calls is taken, without the gate: the count is read first,
    /// so a call it includes that declared a range has its record seen by the reads after it; a record or a
    /// <see cref="MarkWide"/> made meanwhile is left where it is, for the next take (nothing is cleared on this path).
    /// Two takers at once (two checkers of one host) may leave the count of calls taken behind: the next take then counts
    /// more calls than were declared, and its check is the full sweep.</remarks>
    public bool TryTakeRecord(List<(int Container, ulong Start, ulong Last)> ranges, out int calls)
    {
        int seen = Volatile.Read(ref _calls);
        if (!Volatile.Read(ref _wide) && Volatile.Read(ref _declared) == 0)
        {
            calls = unchecked(seen - _callsTaken);
            _callsTaken = seen;
            return true;
        }
        _gate.Enter();
        try
        {
            seen = Volatile.Read(ref _calls);
            calls = unchecked(seen - _callsTaken);
            _callsTaken = seen;
            bool wide = _wide;
            if (!wide)
            {
                // One at a time: AddRange of a list goes through its ICollection interface (issue 16: every check).
                for (int i = 0; i < _ranges.Count; i++)
                {
                    ranges.Add(_ranges[i]);
                }
            }
            _ranges.Clear();
            Volatile.Write(ref _declared, 0);
            _wide = false;
            return !wide;
        }
        finally
        {
            _gate.Exit();
        }
    }
}
