using VfioLab.Fuzzing;
using VfioLab.Host;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;
using VfioLab.Simulation;
using VfioLab.Vfio;

namespace VfioLab.Tests.Robustness;

/// <summary>
/// The ioctl campaign on every fd kind (containers before and after SET_IOMMU, v1 and v2, groups, a
/// vfio-pci and an mdev device) under both kernel profiles: no exception, only defined errnos, every
/// failing call leaves the state digest unchanged, invariants clean after every call.
/// </summary>
public sealed class IoctlCampaignTests
{
    public static TheoryData<string, ulong> Seeds()
    {
        var data = new TheoryData<string, ulong>();
        foreach (string profile in new[] { KernelSettings.Seeds, KernelSettings.Linux618 })
        {
            for (ulong seed = 1; seed <= 6; seed++)
            {
                data.Add(profile, seed);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RunSeed_EveryFdKind_NoViolation(string profile, ulong seed)
    {
        var campaign = new IoctlCampaign(profile);
        campaign.RunSeed(seed);
        Assert.True(campaign.Violations.Count == 0, campaign.Violations.Count == 0 ? null : $"{campaign.Violations[0]}\n{campaign.Violations[0].Scenario}");
        Assert.Equal(IoctlCampaign.CallsPerSeed, campaign.Figures.Ioctls);
    }

    [Fact]
    public void RunSeed_ManySeeds_ReachesErrnoPathsOnEveryFdKind()
    {
        var campaign = new IoctlCampaign(KernelSettings.Seeds);
        for (ulong seed = 100; seed < 120; seed++)
        {
            campaign.RunSeed(seed);
        }
        Assert.Empty(campaign.Violations);
        string[] paths = [.. campaign.Figures.ErrnoPathNames];
        foreach (string kind in FuzzRig.Fds.Select(f => f.Kind).Concat(["fd-closed", "fd-invalid"]))
        {
            Assert.Contains(paths, p => p.StartsWith(kind + " ", StringComparison.Ordinal));
        }
        foreach (string errno in new[] { "EINVAL", "EFAULT", "ENOTTY", "EBADF", "EEXIST" })
        {
            Assert.Contains(paths, p => p.EndsWith(" " + errno, StringComparison.Ordinal));
        }
        Assert.True(campaign.Figures.ErrnoPaths >= 40, $"only {campaign.Figures.ErrnoPaths} errno paths: {string.Join(", ", paths)}");
        // Past the argument checks, not only bouncing off them: GET_INFO, UNMAP and DIRTY_PAGES succeed on the
        // tracking two-domain container, and calls succeed on groups and devices.
        string[] ok = [.. campaign.Figures.SuccessPathNames];
        Assert.Contains("container-v2 0x3b70", ok);
        Assert.Contains("container-v2 0x3b72", ok);
        Assert.Contains("container-v2 0x3b75", ok);
        Assert.Contains(ok, p => p.StartsWith("group-", StringComparison.Ordinal));
        Assert.Contains(ok, p => p.StartsWith("device-pci ", StringComparison.Ordinal));
        Assert.Contains(ok, p => p.StartsWith("device-mdev ", StringComparison.Ordinal));
    }

    [Fact]
    public void Build_Rig_HasEveryFdKindItClaims()
    {
        FuzzRig rig = FuzzRig.Build(KernelSettings.Seeds);
        foreach ((int fd, string kind) in FuzzRig.Fds)
        {
            Assert.True(rig.Process.Process.Fds.TryGet(fd, out OpenFile file), $"fd {fd} ({kind}) is not open");
            file.Put();
            string actual = file.Operations switch
            {
                VfioContainerFile c when c.Container.Iommu is null => "container-unset",
                VfioContainerFile c => ((VfioLab.Type1.VfioIommu)c.Container.Iommu!).V2 ? "container-v2" : "container-v1",
                VfioGroupFile g => g.Group.Number switch { 1 => "group-v2", 3 => "group-v2-64k", 2 => "group-v1", 10 => "group-mdev", _ => "group-?" },
                VfioDeviceFile d => d.Device.Hardware is null ? "device-mdev" : "device-pci",
                _ => "?",
            };
            Assert.Equal(kind, actual);
        }
    }

    [Theory]
    [InlineData(3UL)]
    [InlineData(7UL)]
    public void ReplayOfLastSeed_RunAsAScenario_ReturnsWhatTheCampaignSaw(ulong seed)
    {
        var campaign = new IoctlCampaign(KernelSettings.Seeds);
        campaign.RunSeed(seed, 120);
        string text = campaign.ReplayOfLastSeed();
        ScenarioDocument doc = ScenarioParser.Parse(text, "replay.yaml");
        var reporter = new CollectingReporter();
        ScenarioOutcome outcome = ScenarioRunner.Run(doc, new RunOptions(), reporter, null);
        Assert.True(outcome.Passed, string.Join("\n", reporter.Failures));
        Assert.True(doc.Steps.Count > 120, $"{doc.Steps.Count} steps");
    }

    private sealed class CollectingReporter : IScenarioReporter
    {
        public List<string> Failures { get; } = [];

        public void Started(string name, string description, int steps)
        {
        }

        public void StepFinished(StepReport report)
        {
            if (!report.Passed)
            {
                Failures.Add($"{report.Location} {report.Description}: {string.Join("; ", report.Problems)}");
            }
        }

        public void Finished(ScenarioOutcome outcome)
        {
        }
    }
}
