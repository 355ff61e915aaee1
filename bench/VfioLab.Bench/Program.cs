using BenchmarkDotNet.Running;

namespace VfioLab.Bench;

/// <summary>Runs the benchmarks named on the command line (BenchmarkDotNet's switcher).</summary>
internal static class Program
{
    private static void Main(string[] args)
    {
        if (args is ["--memory-per-mapping"])
        {
            Type1MemoryProbe.Run(Console.Out);
            return;
        }
        if (args is ["--shattered-memory", string runPages, string gib, .. string[] rest])
        {
            ShatteredMemoryProbe.Run(Console.Out, ulong.Parse(runPages, System.Globalization.CultureInfo.InvariantCulture),
                ulong.Parse(gib, System.Globalization.CultureInfo.InvariantCulture),
                rest is [string repeats] ? int.Parse(repeats, System.Globalization.CultureInfo.InvariantCulture) : 1);
            return;
        }
        if (args is ["--populate", string run, string size, .. string[] times])
        {
            PopulateProbe.Run(Console.Out, int.Parse(run, System.Globalization.CultureInfo.InvariantCulture),
                int.Parse(size, System.Globalization.CultureInfo.InvariantCulture),
                times is [string n] ? int.Parse(n, System.Globalization.CultureInfo.InvariantCulture) : 1);
            return;
        }
        if (args is ["--runmap-loop", string count])
        {
            RunMapLoop.Run(Console.Out, int.Parse(count, System.Globalization.CultureInfo.InvariantCulture));
            return;
        }
        if (args is ["--pair-loop", string pairs, .. string[] which] && which is [] or ["tera"] or ["moving"])
        {
            PairLoop.Run(Console.Out, int.Parse(pairs, System.Globalization.CultureInfo.InvariantCulture), tera: which is ["tera"], moving: which is ["moving"]);
            return;
        }
        if (args is ["--pair-ladder", string steps, .. string[] rung] && rung.Length <= 1)
        {
            PairLadder.Run(Console.Out, int.Parse(steps, System.Globalization.CultureInfo.InvariantCulture), rung is [string r] ? r : null);
            return;
        }
        if (args is ["--check-cost", string workload, .. string[] more])
        {
            CheckCost.Run(Console.Out, workload, more is [string n, ..] ? int.Parse(n, System.Globalization.CultureInfo.InvariantCulture) : 1,
                more is [_, string arm] ? arm : "both");
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
