using System.Diagnostics;
using System.Runtime.CompilerServices;

// The tracker keys on the inner Lock as an object for identity only; nothing locks on it through Monitor.
#pragma warning disable CS9216

namespace VfioLab.Diagnostics;

/// <summary>
/// A <see cref="Lock"/> with a <see cref="LockRank"/>, reporting to <see cref="LockOrder"/> in debug
/// builds. A struct on purpose: <c>lock (x)</c> on it does not compile, so no call site can fall back to
/// Monitor and bypass the check; use <c>using (x.EnterScope())</c>.
/// </summary>
/// <remarks>In a release build the reports compile away and every member is a forwarding call the JIT inlines.</remarks>
internal readonly struct OrderedLock
{
    private readonly Lock _lock;

    /// <summary>A new lock of <paramref name="rank"/>.</summary>
    public OrderedLock(LockRank rank)
    {
        _lock = new Lock();
        Rank = rank;
    }

    /// <summary>Where the lock sits in the order.</summary>
    public LockRank Rank { get; }

    /// <summary>Whether the calling thread holds the lock.</summary>
    public bool IsHeldByCurrentThread => _lock.IsHeldByCurrentThread;

    /// <summary>lockdep_assert_held: what a <c>*Locked</c> method calls on entry (STYLE.md 12). In a debug build
    /// a thread that does not hold the lock gets a <see cref="LockOrderException"/>; in a release build the call
    /// is compiled away.</summary>
    [Conditional("DEBUG")]
    public void AssertHeld()
    {
        if (!_lock.IsHeldByCurrentThread)
        {
            LockOrder.ThrowNotHeld(Rank);
        }
    }

    /// <summary>Takes the lock until the returned scope is disposed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Scope EnterScope()
    {
        LockOrder.Acquiring(Rank, _lock);
        Lock.Scope inner = _lock.EnterScope();
        LockOrder.Acquired(Rank, _lock);
        return new Scope(_lock, inner);
    }

    /// <summary>Takes the lock while the thread holds another of the same rank, which the caller
    /// guarantees nobody can take in the other order (a lock of an object not yet published).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Scope EnterScopeNested()
    {
        LockOrder.Acquiring(Rank, _lock, nested: true);
        Lock.Scope inner = _lock.EnterScope();
        LockOrder.Acquired(Rank, _lock);
        return new Scope(_lock, inner);
    }

    /// <summary>Takes the lock (paired with <see cref="Exit"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter()
    {
        LockOrder.Acquiring(Rank, _lock);
        _lock.Enter();
        LockOrder.Acquired(Rank, _lock);
    }

    /// <summary>Releases the lock taken by <see cref="Enter"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit()
    {
        LockOrder.Released(_lock);
        _lock.Exit();
    }

    /// <summary>A held <see cref="OrderedLock"/>, released on dispose.</summary>
    public ref struct Scope
    {
        private readonly Lock _owner;
        private Lock.Scope _inner;

        internal Scope(Lock owner, Lock.Scope inner)
        {
            _owner = owner;
            _inner = inner;
        }

        /// <summary>Releases the lock.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Dispose()
        {
            LockOrder.Released(_owner);
            _inner.Dispose();
        }
    }
}
