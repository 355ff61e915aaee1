using System.Text.Json.Nodes;
using VfioLab.Cli.Commands.Conform;
using VfioLab.Scenarios;

namespace VfioLab.Tests.Cli;

/// <summary><c>vfiolab conform</c>'s pure parts: the guest derived from a scenario (and what it refuses, with the
/// reason), the machines it boots, and the step comparison.</summary>
public sealed class ConformPlanTests
{
    private static ScenarioDocument Doc(string host, string devices) => ScenarioDocument.Parse($$"""
        vfiolab: 1
        name: plan
        host: { {{host}} }
        devices:
        {{devices}}
        steps:
          - open: { path: /dev/vfio/vfio }
        """, "plan.yaml");

    private const string Edu = """  - { name: a, address: "0000:00:10.0", group: 2, bars: [ { index: 0, size: 1MiB } ] }""";

    [Fact]
    public void OneEduPerGroup_SharedGroupsAreSlots_ParamsAndHugepages()
    {
        RigPlan plan = RigPlan.For(Doc("memory: 1GiB, params: { dma_entry_limit: 7 }", Edu + """

              - { name: b, address: "0000:00:11.0", group: 3, bars: [ { index: 0, size: 1MiB } ] }
              - { name: c, address: "0000:00:11.1", group: 3, bars: [ { index: 0, size: 1MiB } ] }
            """), out string? reason)!;

        Assert.Null(reason);
        Assert.Equal("edu,slot:edu+edu", plan.DeviceSpec);
        Assert.Equal(["vfio_iommu_type1.dma_entry_limit=7"], plan.Params);
        Assert.Equal(["hugepages=32"], plan.Append);
        Assert.Equal([("0000:00:10.0", 2), ("0000:00:11.0", 3), ("0000:00:11.1", 3)], plan.Devices);
    }

    [Fact]
    public void APrefixGuest_FitsInALongerOne_OnlyWithTheSameParameters()
    {
        RigPlan one = RigPlan.For(Doc("memory: 1GiB", Edu), out _)!;
        RigPlan two = RigPlan.For(Doc("memory: 1GiB", Edu + "\n" + Edu.Replace("10.0", "11.0", StringComparison.Ordinal).Replace("group: 2", "group: 3", StringComparison.Ordinal).Replace("name: a", "name: b", StringComparison.Ordinal)), out _)!;
        RigPlan limited = RigPlan.For(Doc("memory: 1GiB, params: { dma_entry_limit: 7 }", Edu), out _)!;

        Assert.True(one.FitsIn(two));
        Assert.False(two.FitsIn(one));
        Assert.False(one.FitsIn(limited));
    }

    [Theory]
    [InlineData("iommu: spapr-tce", "sPAPR")]
    [InlineData("page_size: 64KiB", "page_size 64 KiB")]
    [InlineData("memory: 16GiB", "beyond the guest's 2048 MiB")]
    [InlineData("iommu: smmu-v3", "VT-d or virtio-iommu")]
    public void HostsTheRigCannotBoot_AreRefusedWithTheReason(string host, string reason)
    {
        Assert.Null(RigPlan.For(Doc(host, Edu), out string? why));
        Assert.Contains(reason, why, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""  - { name: a, address: "0000:00:10.0", group: 2, bars: [ { index: 0, size: 16MiB } ] }""", "the edu has BAR0 of 1 MiB")]
    [InlineData("""  - { name: a, address: "0000:00:10.0", bars: [ { index: 0, size: 1MiB } ] }""", "no group")]
    [InlineData("""  - { name: a, address: "0000:00:10.0", group: 2, driver: host, bars: [ { index: 0, size: 1MiB } ] }""", "driver host")]
    public void DevicesTheRigCannotOffer_AreRefusedWithTheReason(string device, string reason)
    {
        Assert.Null(RigPlan.For(Doc("memory: 1GiB", device), out string? why));
        Assert.Contains(reason, why, StringComparison.Ordinal);
    }

    [Fact]
    public void Machines_VirtioOn61IsRefused_ApertureFollowsTheIommu()
    {
        Assert.Null(RigMachine.For("6.1", "virtio", out string? why));
        Assert.Contains("CONFIG_VIRTIO_IOMMU", why, StringComparison.Ordinal);
        Assert.Null(RigMachine.For("5.10", "intel", out _));
        Assert.Equal((1UL << 39) - 1, RigMachine.For("6.1", "intel", out _)!.ApertureLast);
        Assert.Equal("linux-6.12", RigMachine.For("6.12", "intel48", out _)!.Profile);
        Assert.Equal(52, RigMachine.For("6.12", "virtio", out _)!.PageSizes.Count);
    }

    [Fact]
    public void Diff_IgnoresTheMachinesIdentities_ReportsEveryOtherField()
    {
        StepRecord Record(string kind, bool passed, string json) => new(0, kind, "f.yaml:1:1", null, passed, passed ? [] : ["missed"], JsonNode.Parse(json)!.AsObject());

        Assert.Empty(StepDiff.Compare(Record("open", true, """{"result":57,"fd":57}"""), Record("open", true, """{"result":3,"fd":3}""")));
        Assert.Empty(StepDiff.Compare(Record("map_dma", true, """{"result":0,"bytes":"aa"}"""), Record("map_dma", true, """{"result":0,"bytes":"bb"}""")));
        List<string> d = StepDiff.Compare(Record("iommu_get_info", true, """{"result":0,"argsz":"0x74","summary":"x"}"""),
            Record("iommu_get_info", false, """{"result":0,"argsz":"0x78","summary":"y"}"""));
        Assert.Equal(2, d.Count);
        Assert.Contains(d, x => x.StartsWith("expectation: kernel met it, model missed it", StringComparison.Ordinal));
        Assert.Contains("argsz: kernel \"0x74\", model \"0x78\"", d);
        Assert.Contains("errno: kernel \"EINVAL\", model (absent)",
            StepDiff.Compare(Record("map_dma", true, """{"result":-22,"errno":"EINVAL"}"""), Record("map_dma", true, """{"result":0}""")));
    }
}
