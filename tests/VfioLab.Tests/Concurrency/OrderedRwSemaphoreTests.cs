using VfioLab.Diagnostics;

namespace VfioLab.Tests.Concurrency;

/// <summary>The mmap lock's reader/writer semaphore (Diagnostics/OrderedRwSemaphore.cs): readers share it, a writer
/// excludes readers and writers, a waiting writer holds new readers back, recursion and a release by a thread that
/// does not hold it are refused (debug builds).</summary>
public sealed class OrderedRwSemaphoreTests
{
    [Fact]
    public void Writers_FourThreads_NeverOverlapAndLoseNoUpdate()
    {
        var sem = new OrderedRwSemaphore(LockRank.Mmap);
        int inside = 0;
        long counter = 0;
        int overlaps = 0;
        long readsSeenTorn = 0;
        long a = 0;
        long b = 0;
        var threads = new List<Thread>();
        for (int t = 0; t < 4; t++)
        {
            bool writer = t % 2 == 0;
            threads.Add(new Thread(() =>
            {
                for (int i = 0; i < 20_000; i++)
                {
                    if (writer)
                    {
                        sem.EnterWriteLock();
                        if (Interlocked.Increment(ref inside) != 1)
                        {
                            Interlocked.Increment(ref overlaps);
                        }
                        counter++;
                        a++;
                        b++;
                        Interlocked.Decrement(ref inside);
                        sem.ExitWriteLock();
                    }
                    else
                    {
                        sem.EnterReadLock();
                        if (Volatile.Read(ref a) != Volatile.Read(ref b))
                        {
                            Interlocked.Increment(ref readsSeenTorn);
                        }
                        sem.ExitReadLock();
                    }
                }
            }));
        }
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.Equal(0, overlaps);
        Assert.Equal(0, readsSeenTorn);
        Assert.Equal(40_000, counter);
        Assert.False(sem.IsWriteLockHeld);
    }

    [Fact]
    public void EnterReadLock_WhileAnotherThreadReads_DoesNotWait()
    {
        var sem = new OrderedRwSemaphore(LockRank.Mmap);
        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var other = new Thread(() =>
        {
            sem.EnterReadLock();
            held.Set();
            release.Wait();
            sem.ExitReadLock();
        });
        other.Start();
        held.Wait();

        sem.EnterReadLock();
        Assert.True(sem.IsReadLockHeld);
        sem.ExitReadLock();

        release.Set();
        other.Join();
    }

    [Fact]
    public void EnterReadLock_WhileAWriterWaits_WaitsForTheWriter()
    {
        var sem = new OrderedRwSemaphore(LockRank.Mmap);
        var order = new List<string>();
        sem.EnterReadLock();
        var writer = new Thread(() =>
        {
            sem.EnterWriteLock();
            lock (order)
            {
                order.Add("writer");
            }
            sem.ExitWriteLock();
        });
        writer.Start();
        // The writer is queued once it counts itself waiting; give it the time to get there.
        SpinWait.SpinUntil(() => writer.ThreadState == ThreadState.WaitSleepJoin, TimeSpan.FromSeconds(30));
        var reader = new Thread(() =>
        {
            sem.EnterReadLock();
            lock (order)
            {
                order.Add("reader");
            }
            sem.ExitReadLock();
        });
        reader.Start();
        Thread.Sleep(50);
        sem.ExitReadLock();
        writer.Join();
        reader.Join();

        Assert.Equal(["writer", "reader"], order);
    }

    // Who holds the lock is tracked in debug builds only (the tests' build); a release build skips the thread lookups.
#if DEBUG
    [Fact]
    public void EnterWriteLock_AgainOnTheHoldingThread_ThrowsAndKeepsTheLock()
    {
        var sem = new OrderedRwSemaphore(LockRank.Mmap);
        sem.EnterWriteLock();

        Assert.Throws<LockRecursionException>(sem.EnterWriteLock);
        Assert.Throws<LockRecursionException>(sem.EnterReadLock);
        Assert.True(sem.IsWriteLockHeld);

        sem.ExitWriteLock();
        Assert.False(sem.IsWriteLockHeld);
    }

    [Fact]
    public void ExitWriteLock_ByAThreadThatDoesNotHoldIt_ThrowsAndKeepsTheHolder()
    {
        var sem = new OrderedRwSemaphore(LockRank.Mmap);
        sem.EnterWriteLock();
        Exception? seen = null;
        var other = new Thread(() => seen = Record.Exception(sem.ExitWriteLock));
        other.Start();
        other.Join();

        Assert.IsType<SynchronizationLockException>(seen);
        Assert.True(sem.IsWriteLockHeld);
        sem.ExitWriteLock();
    }
#endif
}
