using System.Globalization;
using VfioLab.Simulation;

namespace VfioLab.Tests.Concurrency;

/// <summary>
/// The churn stress of <see cref="ConcurrencyStressTests"/> run longer (40 rounds of 200 operations per
/// thread) from <c>VFIOLAB_SOAK</c> seeds, 1000 on, even seeds under <c>seeds</c> and odd ones under <c>linux-6.18</c>. Opt-in:
/// <c>VFIOLAB_SOAK=50 dotnet test tests/VfioLab.Tests --filter FullyQualifiedName~ConcurrencySoakTests</c>.
/// A failure names the seed and profile; <see cref="ConcurrencyStressTests.RunWithChurn"/> with them replays
/// the same operations (the interleaving is the OS's).
/// </summary>
public sealed class ConcurrencySoakTests
{
    private const int FirstSeed = 1000;

    [SoakFact]
    public void WorkersWithGroupChurnAndSecondProcess_ManySeedsLonger_ProgressAndAccountingReconcile()
    {
        int seeds = int.Parse(Environment.GetEnvironmentVariable(SoakFactAttribute.Variable)!, CultureInfo.InvariantCulture);
        for (int seed = FirstSeed; seed < FirstSeed + seeds; seed++)
        {
            ConcurrencyStressTests.RunWithChurn(seed, seed % 2 == 0 ? KernelSettings.Seeds : KernelSettings.Linux618, rounds: 40, opsPerRound: 200);
        }
    }
}
