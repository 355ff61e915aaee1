using System.Diagnostics;

namespace VfioLab.Diagnostics;

/// <summary>
/// A small lockdep for the model (STYLE.md 12): the locks of <see cref="LockRank"/> report here when
/// they are taken and released, and a thread that takes a lock ranked at or below one it already holds
/// gets a <see cref="LockOrderException"/> at once, on the first run that takes the two in the wrong
/// order, whether or not another thread was there to deadlock with it.
/// </summary>
/// <remarks>
/// Every method is <c>[Conditional("DEBUG")]</c>: in a release build the calls, and the evaluation of
/// their arguments, are removed by the compiler, so the hot paths pay nothing. The held locks are
/// thread-static (one small list per thread), so the tracker itself takes no lock. Re-entering an
/// instance the thread already holds (<see cref="Lock"/> and Monitor are recursive) is not an inversion;
/// a try-lock that succeeds is recorded without the order check, because it cannot wait (lockdep's
/// trylock rule); two instances of one rank may nest only where the taker says so (lockdep's
/// <c>SINGLE_DEPTH_NESTING</c>: fork takes the new child's mmap and page-table locks under the parent's).
/// </remarks>
internal static class LockOrder
{
    [ThreadStatic]
    private static List<Held>? _threadHeld;

    /// <summary>Whether this build checks the order (DEBUG); tests that need the check skip otherwise.</summary>
    public static bool Enabled
    {
        get
        {
#if DEBUG
            return true;
#else
            return false;
#endif
        }
    }

    /// <summary>Called before blocking on <paramref name="instance"/>: throws when the thread holds a lock
    /// that must come after it, or one of the same rank unless <paramref name="nested"/>.</summary>
    [Conditional("DEBUG")]
    public static void Acquiring(LockRank rank, object instance, bool nested = false)
    {
        List<Held>? held = _threadHeld;
        if (held is null || held.Count == 0)
        {
            return;
        }
        Held? worst = null;
        foreach (Held h in held)
        {
            if (ReferenceEquals(h.Instance, instance))
            {
                return;
            }
            if (h.Rank > rank || (h.Rank == rank && !nested))
            {
                worst ??= h;
            }
        }
        if (worst is { } w)
        {
            throw new LockOrderException(
                $"lock order: taking {rank} while holding {w.Rank} (held, outermost first: {string.Join(" → ", held.Select(x => x.Rank))})");
        }
    }

    /// <summary>Called once the thread holds <paramref name="instance"/> (after a blocking enter or a
    /// successful try-lock).</summary>
    [Conditional("DEBUG")]
    public static void Acquired(LockRank rank, object instance) => (_threadHeld ??= []).Add(new Held(rank, instance));

    /// <summary>Called when the thread releases <paramref name="instance"/> (once per acquisition; the
    /// innermost record of it goes).</summary>
    [Conditional("DEBUG")]
    public static void Released(object instance)
    {
        List<Held>? held = _threadHeld;
        if (held is not null)
        {
            for (int i = held.Count - 1; i >= 0; i--)
            {
                if (ReferenceEquals(held[i].Instance, instance))
                {
                    held.RemoveAt(i);
                    return;
                }
            }
        }
        throw new LockOrderException("lock order: releasing a lock this thread does not hold");
    }

    /// <summary>Throws for a <c>*Locked</c> method entered without its lock (the locks' <c>AssertHeld</c>).</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void ThrowNotHeld(LockRank rank) =>
        throw new LockOrderException($"lock not held: a {rank} lock must be held by the calling thread (held, outermost first: {string.Join(" → ", HeldByCurrentThread())})");

    /// <summary>The ranks the calling thread holds, outermost first (empty in a release build).</summary>
    public static LockRank[] HeldByCurrentThread() => _threadHeld is { } h ? [.. h.Select(x => x.Rank)] : [];

    private readonly record struct Held(LockRank Rank, object Instance);
}
