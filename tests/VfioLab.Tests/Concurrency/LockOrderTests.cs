using VfioLab.Diagnostics;

namespace VfioLab.Tests.Concurrency;

// The tracker exists in Debug builds only (its calls compile away in Release), and so do its tests.
#if DEBUG

/// <summary>
/// The debug-build lock-order tracker (LockOrder): an inversion of LockRank throws at once, on the first
/// run that takes two locks the wrong way round, without a second thread to deadlock against; re-entry,
/// annotated nesting and try-locks are not inversions. The whole test suite runs the model's locks
/// through it (tests build in Debug), so every path a test reaches has its order checked.
/// </summary>
public sealed class LockOrderTests
{
    [Fact]
    public void Enter_LowerRankWhileHoldingHigher_ThrowsNamingBothRanks()
    {
        Assert.True(LockOrder.Enabled);
        var type1 = new OrderedLock(LockRank.Type1);
        var mmap = new OrderedRwSemaphore(LockRank.Mmap);

        mmap.EnterReadLock();
        try
        {
            LockOrderException e = Assert.Throws<LockOrderException>(() => { using (type1.EnterScope()) { } });
            Assert.Contains("taking Type1 while holding Mmap", e.Message, StringComparison.Ordinal);
            Assert.False(type1.IsHeldByCurrentThread);
        }
        finally
        {
            mmap.ExitReadLock();
        }
        Assert.Empty(LockOrder.HeldByCurrentThread());
    }

    [Fact]
    public void Enter_InDesignOrder_TracksAndReleasesEveryLock()
    {
        var group = new OrderedLock(LockRank.VfioGroup);
        var container = new OrderedLock(LockRank.ContainerGroups);
        var type1 = new OrderedLock(LockRank.Type1);
        var mmap = new OrderedRwSemaphore(LockRank.Mmap);
        var memory = new OrderedLock(LockRank.PhysicalMemory);

        using (group.EnterScope())
        using (container.EnterScope())
        using (type1.EnterScope())
        {
            mmap.EnterWriteLock();
            using (memory.EnterScope())
            {
                Assert.Equal([LockRank.VfioGroup, LockRank.ContainerGroups, LockRank.Type1, LockRank.Mmap, LockRank.PhysicalMemory],
                    LockOrder.HeldByCurrentThread());
            }
            mmap.ExitWriteLock();
        }

        Assert.Empty(LockOrder.HeldByCurrentThread());
    }

    [Fact]
    public void Enter_TwoInstancesOfOneRank_ThrowsUnlessNested()
    {
        var parent = new OrderedLock(LockRank.PageTable);
        var child = new OrderedLock(LockRank.PageTable);

        using (parent.EnterScope())
        {
            Assert.Throws<LockOrderException>(() => { using (child.EnterScope()) { } });
            using (child.EnterScopeNested())
            {
                Assert.Equal(2, LockOrder.HeldByCurrentThread().Length);
            }
        }
        Assert.Empty(LockOrder.HeldByCurrentThread());
    }

    [Fact]
    public void Enter_ReentryOfAHeldLockUnderAHigherRank_IsNotAnInversion()
    {
        // vfio-pci's memory_lock recurses (OrderedReaderWriterLock with recursion); OrderedLock does not (its own tests).
        var memoryLock = new OrderedReaderWriterLock(LockRank.MemoryLock, LockRecursionPolicy.SupportsRecursion);
        var pageTable = new OrderedLock(LockRank.PageTable);

        memoryLock.EnterReadLock();
        using (pageTable.EnterScope())
        {
            memoryLock.EnterReadLock();
            Assert.Equal(3, LockOrder.HeldByCurrentThread().Length);
            memoryLock.ExitReadLock();
        }
        memoryLock.ExitReadLock();
        Assert.Empty(LockOrder.HeldByCurrentThread());
    }

    [Fact]
    public void TryEnterWriteLock_AgainstTheOrder_RecordedWithoutCheck()
    {
        // Hot reset try-locks every device's memory_lock of the slot: a try-lock cannot wait, so cannot deadlock.
        var memoryA = new OrderedReaderWriterLock(LockRank.MemoryLock, LockRecursionPolicy.SupportsRecursion);
        var memoryB = new OrderedReaderWriterLock(LockRank.MemoryLock, LockRecursionPolicy.SupportsRecursion);
        var memoryC = new OrderedReaderWriterLock(LockRank.MemoryLock, LockRecursionPolicy.SupportsRecursion);
        var pt = new OrderedLock(LockRank.PageTable);

        using (pt.EnterScope())
        {
            Assert.True(memoryA.TryEnterWriteLock(0));
            Assert.True(memoryB.TryEnterWriteLock(0));
            memoryB.ExitWriteLock();
            memoryA.ExitWriteLock();
        }
        Assert.True(memoryA.TryEnterWriteLock(0));
        // A blocking down_write of another instance of the rank is an inversion unless nested.
        Assert.Throws<LockOrderException>(memoryC.EnterWriteLock);
        Assert.False(memoryC.IsWriteLockHeld);
        memoryA.ExitWriteLock();
        Assert.Empty(LockOrder.HeldByCurrentThread());
    }

    [Fact]
    public void ExitAndEnter_Type1UnmapNotificationPattern_DropsAndRetakesTheLock()
    {
        // The unmap notification releases iommu->lock around the drivers' callbacks, which take the
        // vendor driver's lock (ranked before type1) and re-enter the backend.
        var driver = new OrderedLock(LockRank.MdevDriver);
        var type1 = new OrderedLock(LockRank.Type1);

        type1.Enter();
        Assert.Throws<LockOrderException>(() => { using (driver.EnterScope()) { } });
        type1.Exit();
        using (driver.EnterScope())
        using (type1.EnterScope())
        {
        }
        type1.Enter();
        type1.Exit();
        Assert.Empty(LockOrder.HeldByCurrentThread());
    }
}
#endif
