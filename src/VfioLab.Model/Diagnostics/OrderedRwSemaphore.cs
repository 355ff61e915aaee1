using System.Runtime.CompilerServices;

namespace VfioLab.Diagnostics;

/// <summary>
/// A reader/writer semaphore without recursion (an rwsem: the mmap lock) with a <see cref="LockRank"/>, reporting to
/// <see cref="LockOrder"/> in debug builds like <see cref="OrderedReaderWriterLock"/>, whose members it mirrors.
/// </summary>
/// <remarks>
/// Why not <see cref="ReaderWriterLockSlim"/>: every MAP_DMA and UNMAP_DMA takes the mmap lock three times (GUP's read,
/// the charge's and the uncharge's write, as the kernel does), and <see cref="ReaderWriterLockSlim"/> pays for
/// per-thread reader records, upgradeable locks and an internal spin lock on each of them: about 5 % of issue 16's
/// 4 KiB pair. This one is one word: <c>_state</c> is 0 when free, the number of readers when read-held, -1 when
/// write-held; an uncontended enter or exit is one compare-exchange. A waiter (which only happens when another thread
/// holds the lock: the lab's simulated contention is <see cref="Host.AddressSpace.HoldMmapLockForOtherThread"/>,
/// which never blocks) sleeps on a monitor; <c>_waiters</c> tells a releaser to wake it. A reader's exit is an
/// interlocked decrement (a full fence); a writer's exit is a plain release store of 0, as <see cref="OrderedLock"/>'s
/// exit is and for the same reason (the pair's charge and uncharge each release the write lock: issue 16), so a
/// waiter that counts itself calls <see cref="Interlocked.MemoryBarrierProcessWide"/> before it tests the state; then
/// a releaser that frees the state and then reads the count, and the waiter, cannot both miss each other (the argument
/// is written out on <see cref="OrderedLock.Gate"/>). Writers are preferred, as with the kernel's rwsem and
/// <see cref="ReaderWriterLockSlim"/>: a new reader waits while a writer does.
/// Who holds it is known in debug builds only, as with <see cref="OrderedLock.AssertHeld"/> and the kernel's lockdep:
/// they keep the writer's thread and the holding readers per thread, refuse recursion as
/// <see cref="LockRecursionPolicy.NoRecursion"/> refuses it (<see cref="LockRecursionException"/>) and a release by a
/// thread that does not hold the lock (<see cref="SynchronizationLockException"/>); the tests run debug builds. Reading
/// the thread's id costs a thread-local lookup, three per charge, so a release build skips them: there
/// <see cref="IsReadLockHeld"/> and <see cref="IsWriteLockHeld"/> answer whether any thread holds the lock that way
/// (only assertions ask), and a recursive enter waits for itself, as a recursive down_write does.
/// </remarks>
internal sealed class OrderedRwSemaphore(LockRank rank)
{
    private readonly object _gate = new();
    private int _state;
    private int _waiters;
    private int _writersWaiting;
    // How many times a waiter slept on the monitor (written under it; the stress tests assert they reached that path).
    internal int SleepsForTest;
#if DEBUG
    private int _writer;
    [ThreadStatic]
    private static List<OrderedRwSemaphore>? _readHeld;
#endif

    /// <summary>Where the lock sits in the order.</summary>
    public LockRank Rank { get; } = rank;

    /// <summary>Whether the calling thread holds it for read (release builds: whether any thread does).</summary>
    public bool IsReadLockHeld
    {
        get
        {
#if DEBUG
            return _readHeld is { } held && held.Contains(this);
#else
            return Volatile.Read(ref _state) > 0;
#endif
        }
    }

    /// <summary>Whether the calling thread holds it for write (release builds: whether any thread does).</summary>
    public bool IsWriteLockHeld
    {
        get
        {
#if DEBUG
            return Volatile.Read(ref _state) < 0 && Volatile.Read(ref _writer) == Environment.CurrentManagedThreadId;
#else
            return Volatile.Read(ref _state) < 0;
#endif
        }
    }

    /// <summary>lockdep_assert_held: the calling thread holds the lock for read or write (debug builds).</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    public void AssertHeld()
    {
        if (!IsReadLockHeld && !IsWriteLockHeld)
        {
            LockOrder.ThrowNotHeld(Rank);
        }
    }

    /// <summary>lockdep_assert_held_write: the calling thread holds the lock for write (debug builds).</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    public void AssertWriteHeld()
    {
        if (!IsWriteLockHeld)
        {
            LockOrder.ThrowNotHeld(Rank);
        }
    }

    /// <summary>down_read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void EnterReadLock()
    {
        CheckNotHeld();
        LockOrder.Acquiring(Rank, this);
        int s = Volatile.Read(ref _state);
        if (s < 0 || Volatile.Read(ref _writersWaiting) != 0 || Interlocked.CompareExchange(ref _state, s + 1, s) != s)
        {
            EnterReadSlow();
        }
        NoteRead();
        LockOrder.Acquired(Rank, this);
    }

    /// <summary>up_read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ExitReadLock()
    {
        LockOrder.Released(this);
        ForgetRead();
        if (Interlocked.Decrement(ref _state) < 0)
        {
            ThrowNotHeld();
        }
        if (Volatile.Read(ref _waiters) != 0)
        {
            WakeAll();
        }
    }

    /// <summary>down_write.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void EnterWriteLock()
    {
        CheckNotHeld();
        LockOrder.Acquiring(Rank, this);
        if (Interlocked.CompareExchange(ref _state, -1, 0) != 0)
        {
            EnterWriteSlow();
        }
        NoteWriter(Environment.CurrentManagedThreadId);
        LockOrder.Acquired(Rank, this);
    }

    /// <summary>down_write_nested: under another lock of the same rank that nobody takes in the other order.</summary>
    public void EnterWriteLockNested()
    {
        CheckNotHeld();
        LockOrder.Acquiring(Rank, this, nested: true);
        if (Interlocked.CompareExchange(ref _state, -1, 0) != 0)
        {
            EnterWriteSlow();
        }
        NoteWriter(Environment.CurrentManagedThreadId);
        LockOrder.Acquired(Rank, this);
    }

    /// <summary>up_write.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ExitWriteLock()
    {
        CheckWriter();
        LockOrder.Released(this);
        NoteWriter(0);
        Volatile.Write(ref _state, 0);
        if (Volatile.Read(ref _waiters) != 0)
        {
            WakeAll();
        }
    }

    // NoRecursion: taking the lock again on a thread that holds it would wait for itself (debug builds).
    [System.Diagnostics.Conditional("DEBUG")]
    private void CheckNotHeld()
    {
#if DEBUG
        if (IsWriteLockHeld || IsReadLockHeld)
        {
            ThrowRecursion();
        }
#endif
    }

    [System.Diagnostics.Conditional("DEBUG")]
    private void CheckWriter()
    {
        if (!IsWriteLockHeld)
        {
            ThrowNotHeld();
        }
    }

    // The argument is not evaluated in a release build (the call is removed with it).
    [System.Diagnostics.Conditional("DEBUG")]
    private void NoteWriter(int thread)
    {
#if DEBUG
        _writer = thread;
#endif
    }

    [System.Diagnostics.Conditional("DEBUG")]
    private void NoteRead()
    {
#if DEBUG
        (_readHeld ??= []).Add(this);
#endif
    }

    [System.Diagnostics.Conditional("DEBUG")]
    private void ForgetRead()
    {
#if DEBUG
        if (_readHeld is not { } held || !held.Remove(this))
        {
            ThrowNotHeld();
        }
#endif
    }

    private void EnterReadSlow()
    {
        SpinWait spin = default;
        for (int i = 0; i < 20; i++)
        {
            if (TryRead())
            {
                return;
            }
            spin.SpinOnce(sleep1Threshold: -1);
        }
        lock (_gate)
        {
            Interlocked.Increment(ref _waiters);
            try
            {
                // A writer's exit stores 0 and then reads _waiters with no fence between (see the remarks).
                Interlocked.MemoryBarrierProcessWide();
                while (!TryRead())
                {
                    SleepsForTest++;
                    Monitor.Wait(_gate);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _waiters);
            }
        }
    }

    private bool TryRead()
    {
        int s = Volatile.Read(ref _state);
        return s >= 0 && Volatile.Read(ref _writersWaiting) == 0 && Interlocked.CompareExchange(ref _state, s + 1, s) == s;
    }

    private void EnterWriteSlow()
    {
        Interlocked.Increment(ref _writersWaiting);
        try
        {
            SpinWait spin = default;
            for (int i = 0; i < 20; i++)
            {
                if (Interlocked.CompareExchange(ref _state, -1, 0) == 0)
                {
                    return;
                }
                spin.SpinOnce(sleep1Threshold: -1);
            }
            lock (_gate)
            {
                Interlocked.Increment(ref _waiters);
                try
                {
                    // A writer's exit stores 0 and then reads _waiters with no fence between (see the remarks).
                    Interlocked.MemoryBarrierProcessWide();
                    while (Interlocked.CompareExchange(ref _state, -1, 0) != 0)
                    {
                        SleepsForTest++;
                        Monitor.Wait(_gate);
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref _waiters);
                }
            }
        }
        finally
        {
            // Readers held back for this writer may go once it holds the lock (they wait for its release) or gave up.
            if (Interlocked.Decrement(ref _writersWaiting) == 0 && Volatile.Read(ref _waiters) != 0)
            {
                WakeAll();
            }
        }
    }

    private void WakeAll()
    {
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }
    }

    private void ThrowNotHeld() => throw new SynchronizationLockException($"the {Rank} lock is released by a thread that does not hold it");

    private void ThrowRecursion() => throw new LockRecursionException($"the {Rank} lock is taken again by the thread that holds it (no recursion)");
}
