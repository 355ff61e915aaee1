using VfioLab.Fuzzing;
using VfioLab.Simulation;

namespace VfioLab.Tests.Robustness;

/// <summary>Random operation sequences against the model and the naive per-page reference agree on every
/// result, errno, written-back size, dirty bitmap, locked_vm, pin count and translation, under each profile.</summary>
public sealed class DifferentialCampaignTests
{
    [Theory]
    [InlineData(KernelSettings.Seeds)]
    [InlineData(KernelSettings.Linux618)]
    public void RunSeed_FortySequences_ModelAgreesWithReference(string profile)
    {
        var campaign = new DifferentialCampaign(profile);
        for (ulong seed = 1; seed <= 40; seed++)
        {
            campaign.RunSeed(seed);
        }
        Assert.True(campaign.Violations.Count == 0, campaign.Violations.Count == 0 ? null
            : $"{campaign.Violations.Count} discrepancies:\n{string.Join("\n", campaign.Violations.Select(v => v.Message.Split('\n')[0]))}\n--- first, as a scenario ---\n{campaign.Violations[0].Scenario}");
    }

    [Theory]
    [InlineData(KernelSettings.Seeds, 1)]
    [InlineData(KernelSettings.Seeds, 4)]
    [InlineData(KernelSettings.Linux618, 1)]
    [InlineData(KernelSettings.Linux618, 4)]
    public void Run_OnShatteredFrames_ModelAgreesWithReference(string profile, int runPages)
    {
        var campaign = new DifferentialCampaign(profile);
        int failures = 0;
        string first = string.Empty;
        for (ulong seed = 100; seed < 120; seed++)
        {
            var rng = new SplitMix64(seed);
            List<RefOp> ops = DifferentialCampaign.RandomSequence(ref rng, DifferentialCampaign.SequenceLength);
            string? problem = campaign.Run(seed % 4 != 0, ops, out int at, strict: false, runPages);
            if (problem is not null && failures++ == 0)
            {
                first = $"seed {seed}, op {at}: {problem}";
            }
        }
        Assert.True(failures == 0, $"{failures} discrepancies on {runPages}-page frame runs; first: {first}");
    }

    [Fact]
    public void RunSeed_CyclesThroughShatteredFrameLayouts()
    {
        Assert.Equal([0, 1, 4], DifferentialCampaign.FrameRunPages);
        string text = DifferentialRig.ScenarioText(KernelSettings.Seeds, v2: true, "rig", strict: false, runPages: 1);
        Assert.Contains("frames: { layout: scattered, run_pages: 1, seed: 7 }", text, StringComparison.Ordinal);
        Assert.DoesNotContain("frames:", DifferentialRig.ScenarioText(KernelSettings.Seeds, v2: true, "rig"), StringComparison.Ordinal);
    }
}
