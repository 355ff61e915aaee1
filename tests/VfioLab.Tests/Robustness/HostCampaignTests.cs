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
        Assert.Equal(0, campaign.Figures.HostInternalErrors);
        // Both ends are reached: refusals of many kinds, and hosts that run.
        Assert.InRange(campaign.Figures.HostRuns, 40, 360);
        Assert.True(campaign.Figures.HostRefusals >= 15, string.Join("\n", campaign.Refusals));
        Assert.Contains(campaign.Refusals, r => r.Contains("MMIO window", StringComparison.Ordinal));
        Assert.Contains(campaign.Refusals, r => r.Contains("runs of frames", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(9882UL)]
    [InlineData(26200UL)]
    [InlineData(26449UL)]
    [InlineData(12098UL)]
    [InlineData(7923UL)]
    public void RunSeed_FoundByTheLongCampaign_NoViolation(ulong seed)
    {
        // 9882, 26200, 26449: a BAR smaller than a page, mmapped and MAPped whole: the rest of its page is vfio-pci's
        // (a dummy resource), so the translation is backed and nothing else is placed there. 12098, 7923: IOMMU units
        // sharing no page size gave a container pgsize_bitmap 0; such a host is now refused.
        var campaign = new HostCampaign(_dir);

        campaign.RunSeed(seed);

        Assert.True(campaign.Violations.Count == 0, campaign.Violations.Count == 0 ? null : campaign.Violations[0].Message);
    }

    [Fact]
    public void AddFunction_TwoSubPageBars_EachStartsAPageOfItsOwn()
    {
        var topology = VfioLab.Pci.PciTopology.AboveRam(1UL << 30, 4096);

        VfioLab.Pci.PciFunction f = topology.AddFunction(VfioLab.Pci.PciAddress.Parse("0000:01:00.0"), 1, 1,
            [new VfioLab.Pci.PciBarRequest(0, 16, Is64Bit: false), new VfioLab.Pci.PciBarRequest(1, 16, Is64Bit: false)]);

        Assert.Equal(0UL, f.Bar(0)!.Base.Value % 4096);
        Assert.Equal(0UL, f.Bar(1)!.Base.Value % 4096);
        Assert.NotEqual(f.Bar(0)!.Base.Value, f.Bar(1)!.Base.Value);
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
