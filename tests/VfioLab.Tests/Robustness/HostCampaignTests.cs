using VfioLab.Fuzzing;

namespace VfioLab.Tests.Robustness;

/// <summary>Generated and mutated host descriptions are refused, located, when the file is parsed, or run with every
/// invariant holding; never another exception, never a refusal that waits until the host is built.</summary>
public sealed class HostCampaignTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vfiolab-host-fuzz-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void RunSeed_FourHundredHosts_RefusedLocatedOrRunClean()
    {
        var campaign = new HostCampaign(_dir);
        for (ulong seed = 1; seed <= 400; seed++)
        {
            campaign.RunSeed(seed);
        }

        Assert.True(campaign.Violations.Count == 0, campaign.Violations.Count == 0 ? null
            : $"{campaign.Violations.Count} violations:\n{string.Join("\n", campaign.Violations.Select(v => $"seed {v.Seed}: {v.Message.Split('\n')[0]}"))}\n--- first case ---\n{campaign.Violations[0].Scenario}");
        Assert.Equal(400, campaign.Figures.HostDescriptions);
        // Both ends are reached: refusals of many kinds, and hosts that run.
        Assert.InRange(campaign.Figures.HostRuns, 40, 360);
        Assert.True(campaign.Figures.HostRefusals >= 15, string.Join("\n", campaign.Refusals));
        Assert.Contains(campaign.Refusals, r => r.Contains("MMIO window", StringComparison.Ordinal));
        Assert.Contains(campaign.Refusals, r => r.Contains("runs of frames", StringComparison.Ordinal));
    }

    [Fact]
    public void CaseOf_SameSeed_SameText()
    {
        Assert.Equal(HostCampaign.CaseOf(4711, out string how), HostCampaign.CaseOf(4711, out string again));
        Assert.Equal(how, again);
    }

    [Fact]
    public void Run_HostCampaignByName_CountsItsFigures()
    {
        var campaign = new FuzzCampaign(new FuzzOptions { Campaign = "host", Rounds = 20, Seed = 3 });

        campaign.Run();

        Assert.Equal(20, campaign.Figures.HostDescriptions);
        Assert.Equal(0, campaign.Figures.Violations);
        Assert.Equal(0, campaign.Figures.ScenarioFiles + campaign.Figures.Ioctls + campaign.Figures.Sequences);
    }
}
