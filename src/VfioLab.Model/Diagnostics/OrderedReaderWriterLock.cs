namespace VfioLab.Diagnostics;

/// <summary>
/// A <see cref="ReaderWriterLockSlim"/> (an rwsem: the mmap lock, vfio-pci's memory_lock) with a
/// <see cref="LockRank"/>, reporting to <see cref="LockOrder"/> in debug builds; the members forward to
/// the inner lock under the same names.
/// </summary>
internal sealed class OrderedReaderWriterLock(LockRank rank, LockRecursionPolicy recursion)
{
    private readonly ReaderWriterLockSlim _lock = new(recursion);

    /// <summary>Where the lock sits in the order.</summary>
    public LockRank Rank { get; } = rank;

    /// <summary>Whether the calling thread holds it for read.</summary>
    public bool IsReadLockHeld => _lock.IsReadLockHeld;

    /// <summary>Whether the calling thread holds it for write.</summary>
    public bool IsWriteLockHeld => _lock.IsWriteLockHeld;

    /// <summary>lockdep_assert_held: the calling thread holds the lock for read or write (debug builds; see
    /// <see cref="OrderedLock.AssertHeld"/>).</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    public void AssertHeld()
    {
        if (!_lock.IsReadLockHeld && !_lock.IsWriteLockHeld && !_lock.IsUpgradeableReadLockHeld)
        {
            LockOrder.ThrowNotHeld(Rank);
        }
    }

    /// <summary>lockdep_assert_held_write: the calling thread holds the lock for write (debug builds).</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    public void AssertWriteHeld()
    {
        if (!_lock.IsWriteLockHeld)
        {
            LockOrder.ThrowNotHeld(Rank);
        }
    }

    /// <summary>down_read.</summary>
    public void EnterReadLock()
    {
        LockOrder.Acquiring(Rank, _lock);
        _lock.EnterReadLock();
        LockOrder.Acquired(Rank, _lock);
    }

    /// <summary>up_read.</summary>
    public void ExitReadLock()
    {
        LockOrder.Released(_lock);
        _lock.ExitReadLock();
    }

    /// <summary>down_write.</summary>
    public void EnterWriteLock()
    {
        LockOrder.Acquiring(Rank, _lock);
        _lock.EnterWriteLock();
        LockOrder.Acquired(Rank, _lock);
    }

    /// <summary>down_write_nested: under another lock of the same rank that nobody takes in the other order.</summary>
    public void EnterWriteLockNested()
    {
        LockOrder.Acquiring(Rank, _lock, nested: true);
        _lock.EnterWriteLock();
        LockOrder.Acquired(Rank, _lock);
    }

    /// <summary>down_write_trylock when <paramref name="millisecondsTimeout"/> is 0: no order check, since it cannot wait.</summary>
    public bool TryEnterWriteLock(int millisecondsTimeout)
    {
        if (millisecondsTimeout != 0)
        {
            LockOrder.Acquiring(Rank, _lock);
        }
        if (!_lock.TryEnterWriteLock(millisecondsTimeout))
        {
            return false;
        }
        LockOrder.Acquired(Rank, _lock);
        return true;
    }

    /// <summary>up_write.</summary>
    public void ExitWriteLock()
    {
        LockOrder.Released(_lock);
        _lock.ExitWriteLock();
    }
}
