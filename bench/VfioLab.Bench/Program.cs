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
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
