namespace VfioLab.Tests.Concurrency;

/// <summary>The stress harness itself: a thread that stops making progress is reported with every
/// thread's position instead of hanging the run, and a wrong prediction fails with the seed.</summary>
public sealed class StressRunTests
{
    [Fact]
    public void Execute_WorkerNeverReturns_WatchdogReportsPositionsInsteadOfHanging()
    {
        using var never = new ManualResetEventSlim(false);
        StressWorker[] workers = [new ScriptedWorker("stuck", _ => never.Wait()), new ScriptedWorker("fine", _ => { })];

        string? failure = new StressRun(workers, seed: 7, rounds: 2, opsPerRound: 3, _ => null).Execute(stall: TimeSpan.FromMilliseconds(300));

        never.Set();
        Assert.NotNull(failure);
        Assert.StartsWith("seed 7: no progress", failure, StringComparison.Ordinal);
        Assert.Contains("stuck: step", failure, StringComparison.Ordinal);
        Assert.Contains("fine: at the barrier after round 0", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Execute_PredictionFails_ReportsSeedWorkerAndOperation()
    {
        StressWorker[] workers = [new ScriptedWorker("wrong", rng => throw new StressFailure("map slot 3: EEXIST"))];

        string? failure = new StressRun(workers, seed: 11, rounds: 1, opsPerRound: 1, _ => null).Execute(stall: TimeSpan.FromSeconds(60));

        Assert.Equal("seed 11: wrong round 0 op 0 (step): map slot 3: EEXIST\nthreads:\n  wrong: done", failure);
    }

    [Fact]
    public void Execute_QuiescentCheckFails_ReportsTheRound()
    {
        StressWorker[] workers = [new ScriptedWorker("a", _ => { }), new ScriptedWorker("b", _ => { })];

        string? failure = new StressRun(workers, seed: 1, rounds: 3, opsPerRound: 2, round => round == 1 ? "locked_vm 5, expected 4" : null)
            .Execute(stall: TimeSpan.FromSeconds(60));

        Assert.NotNull(failure);
        Assert.Contains("quiescent point after round 1: locked_vm 5, expected 4", failure, StringComparison.Ordinal);
    }

    private sealed class ScriptedWorker(string name, Action<Random> step) : StressWorker(null!, name)
    {
        public override int Mappings => 0;

        public override ulong ChargedPages => 0;

        public override ulong PagePins => 0;

        public override void Step(Random rng)
        {
            Position = "step";
            step(rng);
        }
    }
}
