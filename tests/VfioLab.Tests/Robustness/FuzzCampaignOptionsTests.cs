using VfioLab.Fuzzing;
using VfioLab.Lab;

namespace VfioLab.Tests.Robustness;

/// <summary><see cref="FuzzCampaign"/> as a library entry point: options it cannot honour are refused when the
/// campaign is made, rather than run as something else; one it can honour runs and reports its figures.</summary>
public sealed class FuzzCampaignOptionsTests
{
    public static TheoryData<string, FuzzOptions> Refused() => new()
    {
        { "no campaign 'everything'", new FuzzOptions { Campaign = "everything" } },
        { "no campaign runs under kernel profile 'linux-5.4'", new FuzzOptions { Profile = "linux-5.4" } },
        { "no campaign runs under kernel profile 'linux-6.1'", new FuzzOptions { Profile = "linux-6.1" } },
        { "positive number of rounds", new FuzzOptions { Rounds = 0 } },
        { "finite number of seconds", new FuzzOptions { Seconds = 0 } },
        { "finite number of seconds", new FuzzOptions { Seconds = double.PositiveInfinity } },
        { "finite number of seconds", new FuzzOptions { Seconds = double.NaN } },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void New_OptionsItCannotHonour_ThrowsArgumentException(string reason, FuzzOptions options)
    {
        ArgumentException e = Assert.Throws<ArgumentException>(() => new FuzzCampaign(options));

        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Equal("options", e.ParamName);
    }

    [Fact]
    public void Run_OneRoundOfTheScenarioCampaign_ReportsProgressAndFigures()
    {
        var campaign = new FuzzCampaign(new FuzzOptions { Rounds = 1, Seed = 7, Campaign = "scenario", Profile = KernelProfiles.Seeds });
        var progress = new List<double>();

        campaign.Run((done, _) => progress.Add(done));

        Assert.Equal([1.0], progress);
        Assert.Equal(1, campaign.Figures.ScenarioFiles);
        Assert.Equal(0, campaign.Figures.Violations);
        Assert.Empty(campaign.Violations);
        Assert.Empty(campaign.WriteFailures(Path.Combine(Path.GetTempPath(), $"vfiolab-none-{Guid.NewGuid():N}")));
    }
}
