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
}
