namespace VfioLab.Host;

// Read-only access for the invariant checker's narrow check (Checks/InvariantChecker.InPlace.cs, issue 16): whether a
// batch of frame runs all hold a pin, under one acquisition of the lock, one descent of the pin map per run.
internal sealed partial class PhysicalMemory
{
    /// <summary>Whether every frame of every run (first pfn, frame count) holds at least one pin.</summary>
    internal bool AllPinnedForCheck(ReadOnlySpan<(ulong First, ulong Count)> runs) => AllPinnedForCheck(runs, out _);

    /// <summary><see cref="AllPinnedForCheck(ReadOnlySpan{ValueTuple{ulong, ulong}})"/>, and the page pins outstanding
    /// (<see cref="TotalPins"/>) read in the same acquisition of the lock.</summary>
    internal bool AllPinnedForCheck(ReadOnlySpan<(ulong First, ulong Count)> runs, out ulong totalPins)
    {
        using (_gate.EnterScope())
        {
            totalPins = _totalPins;
            foreach ((ulong first, ulong count) in runs)
            {
                if (!_pins.NoneZero(first, first + count - 1))
                {
                    return false;
                }
            }
            return true;
        }
    }

    /// <summary>Whether every frame marked in <paramref name="bits"/> (bit <c>i</c> of word <c>w</c> is frame
    /// <c>64w + i</c>) holds at least one pin, read in frame order (<see cref="FrameCountMap.NoneZeroWhereMarked"/>: the
    /// check after a MAP of shattered memory, whose frames it marked anyway), with the page pins outstanding read in the
    /// same acquisition of the lock.</summary>
    internal bool AllMarkedPinnedForCheck(ReadOnlySpan<ulong> bits, out ulong totalPins)
    {
        using (_gate.EnterScope())
        {
            totalPins = _totalPins;
            return _pins.NoneZeroWhereMarked(bits);
        }
    }

    /// <summary>How many times the memory's lock was taken (<see cref="Diagnostics.OrderedLock.EntriesForCheck"/>): every
    /// writer of the pin, free and reference maps takes it.</summary>
    internal int LockEntriesForCheck => _gate.EntriesForCheck;

    /// <summary><see cref="TotalPins"/> without the lock, for a reader that proved by <see cref="LockEntriesForCheck"/>
    /// that nobody took it since a point where the count was consistent.</summary>
    internal ulong TotalPinsUnlockedForCheck => Volatile.Read(ref _totalPins);
}
