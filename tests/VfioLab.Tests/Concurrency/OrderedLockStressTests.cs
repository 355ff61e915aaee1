using VfioLab.Diagnostics;

namespace VfioLab.Tests.Concurrency;

/// <summary>
/// Stress for the plain-store release of <see cref="OrderedLock"/> and of <see cref="OrderedRwSemaphore"/>'s writer (issue
/// 16): an exit stores 0 and reads the waiter count with no fence between, and a waiter pays for the fence
/// (Interlocked.MemoryBarrierProcessWide) after counting itself. A lost wake-up would leave a thread asleep for ever:
/// every run here joins its threads with a deadline and fails if one is still waiting. The critical sections hold
/// the lock for a varying while and release it at once after a short one, so waiters sleep and wake in every phase of
/// an exit; the tests assert they did sleep (the path the argument is about), that no two holders overlapped and that
/// no update was lost.
/// </summary>
public sealed class OrderedLockStressTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    [Fact]
    public void Exit_SixThreadsSleepingAndBarging_NoneIsLeftAsleepAndNoneOverlaps()
    {
        var gate = new OrderedLock(LockRank.PhysicalMemory);
        int inside = 0;
        int overlaps = 0;
        long counter = 0;
        const int Threads = 6;
        const int Rounds = 40_000;
        RunAll(Threads, t =>
        {
            var random = new Random(t);
            for (int i = 0; i < Rounds; i++)
            {
                using (gate.EnterScope())
                {
                    if (Interlocked.Increment(ref inside) != 1)
                    {
                        Interlocked.Increment(ref overlaps);
                    }
                    counter++;
                    Hold(random, i);
                    Interlocked.Decrement(ref inside);
                }
            }
        });

        Assert.Equal(0, overlaps);
        Assert.Equal(Threads * Rounds, counter);
        Assert.False(gate.IsHeldByCurrentThread);
        Assert.True(gate.SleepsForTest > 0, "no waiter ever slept: the stress did not reach the wake-up path");
    }

    [Fact]
    public void ExitWriteLock_WritersAndReadersSleepingOnIt_NoneIsLeftAsleepAndNoneOverlaps()
    {
        var sem = new OrderedRwSemaphore(LockRank.Mmap);
        int writersInside = 0;
        int overlaps = 0;
        long counter = 0;
        long torn = 0;
        long a = 0;
        long b = 0;
        const int Threads = 6;
        const int Rounds = 20_000;
        RunAll(Threads, t =>
        {
            var random = new Random(t);
            bool writer = t % 3 != 2;
            for (int i = 0; i < Rounds; i++)
            {
                if (writer)
                {
                    sem.EnterWriteLock();
                    if (Interlocked.Increment(ref writersInside) != 1)
                    {
                        Interlocked.Increment(ref overlaps);
                    }
                    counter++;
                    a++;
                    Hold(random, i);
                    b++;
                    Interlocked.Decrement(ref writersInside);
                    sem.ExitWriteLock();
                }
                else
                {
                    sem.EnterReadLock();
                    if (Volatile.Read(ref writersInside) != 0 || Volatile.Read(ref a) != Volatile.Read(ref b))
                    {
                        Interlocked.Increment(ref torn);
                    }
                    sem.ExitReadLock();
                }
            }
        });

        Assert.Equal(0, overlaps);
        Assert.Equal(0, torn);
        Assert.Equal(4L * Rounds, counter);
        Assert.False(sem.IsWriteLockHeld);
        Assert.True(sem.SleepsForTest > 0, "no waiter ever slept: the stress did not reach the wake-up path");
    }

    [Fact]
    public void Exit_AsTheOnlyWaiterCountsItself_WakesIt()
    {
        var gate = new OrderedLock(LockRank.Type1);
        OnlyWaiterRounds(gate.Enter, gate.Exit, _ => gate.Enter(), _ => gate.Exit());
        Assert.True(gate.SleepsForTest > 0, "the waiter never slept: the test did not reach the wake-up path");
    }

    [Fact]
    public void ExitWriteLock_AsTheOnlyWaiterCountsItself_WakesIt()
    {
        // The waiter alternates: a writer on even rounds, a reader on odd ones (each counts itself on its own path).
        var sem = new OrderedRwSemaphore(LockRank.Mmap);
        OnlyWaiterRounds(sem.EnterWriteLock, sem.ExitWriteLock,
            round => { if (round % 2 == 0) { sem.EnterWriteLock(); } else { sem.EnterReadLock(); } },
            round => { if (round % 2 == 0) { sem.ExitWriteLock(); } else { sem.ExitReadLock(); } });
        Assert.True(sem.SleepsForTest > 0, "the waiter never slept: the test did not reach the wake-up path");
    }

    // One holder, one waiter, and no third thread whose later exit could wake a waiter a release forgot: each round the
    // holder releases after a hold swept across the waiter's spinning, so over the rounds the release falls at every
    // point of the waiter's way to sleep, including between counting itself and testing the word. With the waiter's
    // process-wide fence removed, a run of 20,000 rounds left the waiter asleep at round 1,383 (one run of two).
    private static void OnlyWaiterRounds(Action holderEnter, Action holderExit, Action<int> waiterEnter, Action<int> waiterExit)
    {
        const int Rounds = 8_000;
        int go = 0;
        int done = 0;
        var waiter = new Thread(() =>
        {
            for (int round = 1; round <= Rounds; round++)
            {
                while (Volatile.Read(ref go) != round)
                {
                    Thread.SpinWait(1);
                }
                waiterEnter(round);
                waiterExit(round);
                Volatile.Write(ref done, round);
            }
        })
        { IsBackground = true };
        waiter.Start();
        var random = new Random(16);
        for (int round = 1; round <= Rounds; round++)
        {
            holderEnter();
            Volatile.Write(ref go, round);
            Thread.SpinWait(random.Next(1 << (round % 14)));
            holderExit();
            DateTime end = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            var spin = default(SpinWait);
            while (Volatile.Read(ref done) != round)
            {
                Assert.True(DateTime.UtcNow < end, $"round {round}: the waiter is still asleep 30 s after the release");
                spin.SpinOnce();
            }
        }
        Assert.True(waiter.Join(Deadline));
    }

    // Mostly a release right after the enter (an exit racing a waiter that is counting itself), now and then a hold
    // long past the waiters' spinning (so they sleep), and sometimes a yield inside (the holder preempted).
    private static void Hold(Random random, int round)
    {
        int r = random.Next(64);
        if (r == 0)
        {
            Thread.SpinWait(2000);
        }
        else if (r == 1)
        {
            Thread.Yield();
        }
        else if (round % 4096 == 0)
        {
            Thread.Sleep(1);
        }
        else
        {
            Thread.SpinWait(r & 7);
        }
    }

    private static void RunAll(int count, Action<int> body)
    {
        var failures = new List<Exception>();
        var threads = new List<Thread>();
        for (int t = 0; t < count; t++)
        {
            int id = t;
            threads.Add(new Thread(() =>
            {
                try
                {
                    body(id);
                }
                catch (Exception e)
                {
                    lock (failures)
                    {
                        failures.Add(e);
                    }
                }
            })
            { IsBackground = true });
        }
        threads.ForEach(t => t.Start());
        DateTime end = DateTime.UtcNow + Deadline;
        foreach (Thread t in threads)
        {
            TimeSpan left = end - DateTime.UtcNow;
            Assert.True(t.Join(left > TimeSpan.Zero ? left : TimeSpan.Zero),
                $"a thread is still waiting after {Deadline.TotalSeconds} s: a release did not wake a sleeping waiter");
        }
        Assert.Empty(failures);
    }
}
