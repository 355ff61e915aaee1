namespace VfioLab.Host;

/// <summary>
/// Mutual exclusion for the invariant checker's own short critical sections (the change journal's record, the
/// checker's gate): one compare-exchange to enter and a release store to leave when nobody else holds it. Issue 16:
/// a check after every call took six <see cref="Lock"/> round trips beyond the call's own, and on the 2-core benchmark
/// VM a <see cref="Lock"/> round trip costs about 22 ns (its owner's thread id is looked up in thread-local storage and
/// leaving is a second atomic) against about 10 here. Not reentrant and not fair; a waiter spins, then yields and
/// sleeps (<see cref="SpinWait"/>), so it suits sections that are short or rarely contended (a full sweep holding
/// the checker's gate keeps a second checking thread waiting as long as it runs, as the lock did).
/// </summary>
internal struct SpinGate
{
    private int _held;

    /// <summary>Waits until the gate is free and takes it.</summary>
    public void Enter()
    {
        if (Interlocked.CompareExchange(ref _held, 1, 0) != 0)
        {
            EnterContended();
        }
    }

    /// <summary>Leaves the gate (the caller holds it).</summary>
    public void Exit() => Volatile.Write(ref _held, 0);

    private void EnterContended()
    {
        var wait = default(SpinWait);
        do
        {
            wait.SpinOnce(sleep1Threshold: 20);
        }
        while (Volatile.Read(ref _held) != 0 || Interlocked.CompareExchange(ref _held, 1, 0) != 0);
    }
}
