using System.Text;

namespace VfioLab.Tests.Concurrency;

/// <summary>
/// Runs <see cref="StressWorker"/>s on their own threads for a fixed number of rounds of a fixed number of
/// operations (bounded work, no wall-clock target). Between rounds every thread waits at a barrier: that
/// quiescent point runs <paramref name="quiescent"/> (invariants, accounting) with no call in flight. A
/// watchdog reports every thread's position when no operation completes for <c>stall</c> instead of hanging
/// the test run; worker threads are background threads, so a deadlocked run still lets the process exit.
/// </summary>
internal sealed class StressRun(StressWorker[] workers, int seed, int rounds, int opsPerRound, Func<int, string?> quiescent)
{
    private readonly object _gate = new();
    private readonly List<string> _failures = [];
    private long _progress;
    private volatile bool _stop;

    /// <summary>Operations completed by all threads.</summary>
    public long Operations => Interlocked.Read(ref _progress);

    /// <summary>Runs to the end; returns null, or what failed (with the seed and every thread's position).</summary>
    public string? Execute(TimeSpan stall)
    {
        // Not disposed when the watchdog gives up: the stuck threads still hold it.
        var barrier = new Barrier(workers.Length, b =>
        {
            Interlocked.Increment(ref _progress);
            string? problem;
            try
            {
                problem = quiescent((int)b.CurrentPhaseNumber);
            }
            catch (Exception e)
            {
                problem = e.ToString();
            }
            if (problem is not null)
            {
                Fail($"quiescent point after round {b.CurrentPhaseNumber}: {problem}");
            }
        });
        var threads = new Thread[workers.Length];
        for (int i = 0; i < workers.Length; i++)
        {
            StressWorker w = workers[i];
            // Not HashCode.Combine: it is salted per process, so the seed in a failure message would not
            // replay the same operations.
            var rng = new Random(unchecked((seed * 7919) + i));
            threads[i] = new Thread(() => Work(w, rng, barrier)) { IsBackground = true, Name = $"stress-{w.Name}" };
        }
        foreach (Thread t in threads)
        {
            t.Start();
        }
        long seen = -1;
        DateTime lastProgress = DateTime.UtcNow;
        foreach (Thread t in threads)
        {
            while (!t.Join(TimeSpan.FromMilliseconds(200)))
            {
                long now = Operations;
                if (now != seen)
                {
                    seen = now;
                    lastProgress = DateTime.UtcNow;
                }
                else if (DateTime.UtcNow - lastProgress > stall)
                {
                    _stop = true;
                    return $"seed {seed}: no progress for {stall.TotalSeconds} s after {now} operations (deadlock?)\n{Positions()}";
                }
            }
        }
        barrier.Dispose();
        lock (_gate)
        {
            return _failures.Count == 0 ? null : $"seed {seed}: {string.Join("\n", _failures)}\n{Positions()}";
        }
    }

    private void Work(StressWorker w, Random rng, Barrier barrier)
    {
        // Its own generator, so the operations a seed chooses do not depend on the yields.
        var yields = new Random(rng.Next());
        for (int round = 0; round < rounds; round++)
        {
            for (int op = 0; op < opsPerRound && !_stop; op++)
            {
                try
                {
                    w.Step(rng);
                }
                catch (Exception e)
                {
                    Fail($"{w.Name} round {round} op {op} ({w.Position}): {(e is StressFailure ? e.Message : e.ToString())}");
                }
                Interlocked.Increment(ref _progress);
                // Now and then hand the core over between operations: with more threads than cores, a thread
                // would otherwise run long stretches of a round within its time slice. Not always: preemption in
                // the middle of an operation (a fork's child alive while others act) needs long slices too.
                if (yields.Next(8) == 0)
                {
                    Thread.Yield();
                }
            }
            w.Position = $"at the barrier after round {round}";
            barrier.SignalAndWait();
        }
        w.Position = "done";
    }

    private void Fail(string what)
    {
        lock (_gate)
        {
            _failures.Add(what);
        }
        _stop = true;
    }

    private string Positions()
    {
        var sb = new StringBuilder("threads:");
        foreach (StressWorker w in workers)
        {
            sb.Append("\n  ").Append(w.Name).Append(": ").Append(w.Position);
        }
        return sb.ToString();
    }
}
