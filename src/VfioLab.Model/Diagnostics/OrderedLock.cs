using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace VfioLab.Diagnostics;

/// <summary>
/// A mutex without recursion (the kernel's mutex or spinlock) with a <see cref="LockRank"/>, reporting to
/// <see cref="LockOrder"/> in debug builds. A struct on purpose: <c>lock (x)</c> on it does not compile, so no call site
/// can fall back to Monitor and bypass the check; use <c>using (x.EnterScope())</c>.
/// </summary>
/// <remarks>
/// Why not <see cref="Lock"/>: its enter and exit each read the calling thread's id from thread-local storage (a call to
/// <c>__tls_get_addr</c> here) to support recursion and ownership checks, and a MAP_DMA+UNMAP_DMA pair of one page takes
/// seven such locks (type1's twice, the IOMMU domain's twice, physical memory's twice, the page table's once): 16 % of
/// issue 16's 4 KiB pair. This one is one word (<see cref="Gate"/>): an uncontended enter is one compare-exchange and an
/// uncontended exit one exchange. The kernel's mutexes and spinlocks do not recurse either; in a release build a
/// recursive enter waits for itself, as a recursive mutex_lock does. Who holds the lock is known in debug builds only,
/// as with <see cref="OrderedRwSemaphore"/> and the kernel's lockdep: there a recursive enter throws
/// <see cref="LockRecursionException"/> and a release by a thread that does not hold the lock
/// <see cref="SynchronizationLockException"/>, and <see cref="IsHeldByCurrentThread"/> is exact; the tests run debug
/// builds. In a release build <see cref="IsHeldByCurrentThread"/> answers whether any thread holds it (only assertions
/// ask), and the <see cref="LockOrder"/> reports compile away.
/// </remarks>
internal readonly struct OrderedLock
{
    private readonly Gate _gate;

    /// <summary>A new lock of <paramref name="rank"/>.</summary>
    public OrderedLock(LockRank rank) => _gate = new Gate(rank);

    /// <summary>Where the lock sits in the order.</summary>
    public LockRank Rank => _gate.Rank;

    /// <summary>Whether the calling thread holds the lock (release builds: whether any thread does).</summary>
    public bool IsHeldByCurrentThread => _gate.IsHeldByCurrentThread;

    /// <summary>How many times the lock was taken (wrapping): a modification counter every writer of what the lock guards
    /// bumps by taking it. The invariant checker (issue 16) compares it with the value a call handed over to prove
    /// nobody entered since, without taking the lock.</summary>
    internal int EntriesForCheck => Volatile.Read(ref _gate.Entries);

    /// <summary>How many times a waiter slept on the lock (for the stress tests; counted on the sleeping path only).</summary>
    internal int SleepsForTest => Volatile.Read(ref _gate.SleepsForTest);

    /// <summary>lockdep_assert_held: what a <c>*Locked</c> method calls on entry (STYLE.md 12). In a debug build
    /// a thread that does not hold the lock gets a <see cref="LockOrderException"/>; in a release build the call
    /// is compiled away.</summary>
    [Conditional("DEBUG")]
    public void AssertHeld()
    {
        if (!_gate.IsHeldByCurrentThread)
        {
            LockOrder.ThrowNotHeld(Rank);
        }
    }

    /// <summary>Takes the lock until the returned scope is disposed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Scope EnterScope()
    {
        Enter();
        return new Scope(_gate);
    }

    /// <summary>Takes the lock while the thread holds another of the same rank, which the caller
    /// guarantees nobody can take in the other order (a lock of an object not yet published).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Scope EnterScopeNested()
    {
        _gate.CheckNotHeld();
        LockOrder.Acquiring(Rank, _gate, nested: true);
        _gate.Enter();
        LockOrder.Acquired(Rank, _gate);
        return new Scope(_gate);
    }

    /// <summary>Takes the lock (paired with <see cref="Exit"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter()
    {
        _gate.CheckNotHeld();
        LockOrder.Acquiring(Rank, _gate);
        _gate.Enter();
        LockOrder.Acquired(Rank, _gate);
    }

    /// <summary>Releases the lock taken by <see cref="Enter"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit()
    {
        LockOrder.Released(_gate);
        _gate.Exit();
    }

    /// <summary>A held <see cref="OrderedLock"/>, released on dispose.</summary>
    public ref struct Scope
    {
        private readonly Gate _owner;

        internal Scope(Gate owner) => _owner = owner;

        /// <summary>Releases the lock.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Dispose()
        {
            LockOrder.Released(_owner);
            _owner.Exit();
        }
    }

    /// <summary>
    /// The lock word, 0 free and 1 held, and beside it the count of threads that may sleep waiting for it. An uncontended
    /// enter is one compare-exchange; an exit is a plain release store of 0 followed by a plain read of the waiter count,
    /// and wakes a waiter (under this object's monitor) only when the count is not 0.
    /// </summary>
    /// <remarks>
    /// Why a plain store (issue 16): the 4 KiB MAP+UNMAP pair takes this lock 7 times, and an
    /// <see cref="Interlocked.Exchange(ref int, int)"/> on exit is a locked instruction (a full fence) where a release
    /// store on x86-64 is a plain <c>mov</c>. Measured in <c>--pair-loop</c>, same sitting: see docs/benchmarks.md.
    /// Why it is race-free: a store followed by a load of another word may be reordered by the processor (x86's store
    /// buffer), so an exiting owner could read "no waiter" while a waiter reads "held" and sleeps for ever. The waiter
    /// therefore pays for both sides: it counts itself (an interlocked increment) and then calls
    /// <see cref="Interlocked.MemoryBarrierProcessWide"/> (membarrier: a full fence on every processor running a thread
    /// of this process) before it tests the word, and stays counted until it holds the lock. Every owner's exit is then
    /// either wholly before the fence on its processor (its store of 0 is visible to the waiter's test, which takes the
    /// lock) or its read of the count comes after the fence (it sees the waiter and wakes it). The waiter tests and
    /// sleeps under the monitor the waker takes, so a wake cannot fall between a failed test and the sleep. The
    /// process-wide fence costs microseconds, paid only by a thread that already spun 20 times without getting the lock.
    /// <c>OrderedLockStressTests</c> hammers it from several threads and checks mutual exclusion and that nobody hangs.
    /// </remarks>
    internal sealed class Gate(LockRank rank)
    {
        private int _state;
        private int _waiters;
#if DEBUG
        private int _owner;
#endif

        // How many times a waiter went to sleep on the monitor (written under it): the stress tests assert their threads
        // reached the path whose wake-up the plain-store exit relies on. Costs nothing on the uncontended path.
        internal int SleepsForTest;

        // Bumped by every holder right after it takes the lock (a plain add: only the holder writes it; issue 16's
        // checker reads it, see EntriesForCheck). One add per enter is the whole cost to callers that never check.
        internal int Entries;

        public LockRank Rank { get; } = rank;

        public bool IsHeldByCurrentThread
        {
            get
            {
#if DEBUG
                return Volatile.Read(ref _state) != 0 && Volatile.Read(ref _owner) == Environment.CurrentManagedThreadId;
#else
                return Volatile.Read(ref _state) != 0;
#endif
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Enter()
        {
            if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
            {
                EnterSlow();
            }
            Entries++;
            NoteOwner(Environment.CurrentManagedThreadId);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Exit()
        {
            CheckOwner();
            NoteOwner(0);
            // The JIT keeps volatile accesses in program order; the processor may not, which EnterSlow's fence covers.
            Volatile.Write(ref _state, 0);
            if (Volatile.Read(ref _waiters) != 0)
            {
                Wake();
            }
        }

        // No recursion: taking the lock again on the thread that holds it would wait for itself (debug builds).
        [Conditional("DEBUG")]
        public void CheckNotHeld()
        {
            if (IsHeldByCurrentThread)
            {
                throw new LockRecursionException($"the {Rank} lock is taken again by the thread that holds it (no recursion)");
            }
        }

        [Conditional("DEBUG")]
        private void CheckOwner()
        {
            if (!IsHeldByCurrentThread)
            {
                throw new SynchronizationLockException($"the {Rank} lock is released by a thread that does not hold it");
            }
        }

        // The argument is not evaluated in a release build (the call is removed with it).
        [Conditional("DEBUG")]
        private void NoteOwner(int thread)
        {
#if DEBUG
            Volatile.Write(ref _owner, thread);
#endif
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void EnterSlow()
        {
            SpinWait spin = default;
            for (int i = 0; i < 20; i++)
            {
                if (Volatile.Read(ref _state) == 0 && Interlocked.CompareExchange(ref _state, 1, 0) == 0)
                {
                    return;
                }
                spin.SpinOnce(sleep1Threshold: -1);
            }
            lock (this)
            {
                Interlocked.Increment(ref _waiters);
                try
                {
                    // Orders the count before the test below on this processor, and every other processor's store of
                    // 0 before its read of the count with respect to them (see the remarks).
                    Interlocked.MemoryBarrierProcessWide();
                    while (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
                    {
                        SleepsForTest++;
                        Monitor.Wait(this);
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref _waiters);
                }
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Wake()
        {
            // A waiter holds the monitor from its test until it sleeps, so this pulse finds it asleep or finds it gone
            // (it took the lock). A woken waiter that loses the lock to a barging thread sleeps again, still counted, and
            // that thread's exit wakes it.
            lock (this)
            {
                Monitor.Pulse(this);
            }
        }
    }
}
