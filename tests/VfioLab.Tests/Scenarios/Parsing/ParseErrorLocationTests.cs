using VfioLab.Scenarios;

namespace VfioLab.Tests.Scenarios.Parsing;

public sealed class ParseErrorLocationTests
{
    private const int S = ScenarioSamples.FirstStepLine;

    private static ScenarioParseException StepError(params string[] steps) => ScenarioSamples.Error(ScenarioSamples.WithSteps(steps));

    private static void AssertAt(ScenarioParseException e, int line, int column, string fragment)
    {
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.Equal(ScenarioSamples.File, e.File);
        Assert.StartsWith($"{ScenarioSamples.File}:{line}:{column}: ", e.Message);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void Parse_YamlSyntaxError_LocatedAtYamlMark()
    {
        ScenarioParseException e = ScenarioSamples.Error("vfiolab: 1\nsteps: [ { a: 1 }\n");

        Assert.Equal(ScenarioSamples.File, e.File);
        Assert.True(e.Line >= 2, e.Message);
        Assert.Contains("YAML", e.Message);
    }

    [Fact]
    public void Parse_EmptyFile_ReportsEmpty() => AssertAt(ScenarioSamples.Error(""), 1, 1, "empty scenario");

    [Fact]
    public void Parse_OnlyComments_ReportsEmpty() => Assert.Contains("empty scenario", ScenarioSamples.Error("# nothing\n").Message);

    [Fact]
    public void Parse_TopLevelList_ReportsMapExpected() => AssertAt(ScenarioSamples.Error("- a\n- b\n"), 1, 1, "a scenario is a map");

    [Fact]
    public void Parse_WrongVersion_LocatedAtValue() => AssertAt(ScenarioSamples.Error("vfiolab: 2\nsteps: []\n"), 1, 10, "unsupported schema version");

    [Fact]
    public void Parse_MissingVersion_ReportsRequiredKey() => AssertAt(ScenarioSamples.Error("name: x\nsteps: []\n"), 1, 1, "missing required key 'vfiolab'");

    [Fact]
    public void Parse_MissingSteps_ReportsRequiredKey() => AssertAt(ScenarioSamples.Error("vfiolab: 1\n"), 1, 1, "missing required key 'steps'");

    [Fact]
    public void Parse_UnknownTopLevelKey_LocatedAtKeyAndListsAllowed() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\nstep: []\n"), 2, 1, "unknown key 'step'; allowed: vfiolab, name");

    [Fact]
    public void Parse_DuplicateKey_LocatedAtSecondKey() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\nname: a\nname: b\nsteps: []\n"), 3, 1, "duplicate key 'name'");

    [Fact]
    public void Parse_BadPageSize_LocatedAtValue() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\nhost:\n  page_size: 8KiB\nsteps: []\n"), 3, 14, "not a supported PAGE_SIZE");

    [Fact]
    public void Parse_BadSizeSyntax_LocatedAtValue() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\nhost:\n  memory: 4GB\nsteps: []\n"), 3, 11, "unknown unit 'GB'");

    [Fact]
    public void Parse_HugeNumber_ReportsOutOfRange() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\nhost: { memory: 99999999999999999999 }\nsteps: []\n"), 2, 17, "value out of range");

    [Fact]
    public void Parse_UnknownIommu_ListsProfiles() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\nhost: { iommu: intel }\nsteps: []\n"), 2, 16, "allowed: vt-d, amd-vi, smmu-v3, spapr-tce");

    [Fact]
    public void Parse_UnknownKernel_LocatedAtValue() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\nhost: { kernel: linux-5.4 }\nsteps: []\n"), 2, 17, "unknown value 'linux-5.4'");

    [Fact]
    public void Parse_UnknownQuirk_LocatedAtItem() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\nhost:\n  quirks: [unmap-owner-check, fast-path]\nsteps: []\n"), 3, 31, "unknown value 'fast-path'");

    [Fact]
    public void Parse_WrongType_ReportsExpectedMap() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\nhost: 5\nsteps: []\n"), 2, 7, "host: expected a map");

    [Fact]
    public void Parse_BadPciAddress_LocatedAtValue() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\ndevices:\n  - { name: a, address: \"01:00.0\" }\nsteps: []\n"), 3, 25, "expected a PCI address");

    [Fact]
    public void Parse_UnknownStepKind_LocatedAtKeyAndListsKinds() =>
        AssertAt(StepError("- exit: {}", "- map_dmaa: { fd: 3 }"), S + 1, 5, "unknown step kind 'map_dmaa'; known: mmap, mmap_region");

    [Fact]
    public void Parse_UnknownField_LocatedAtKeyAndListsFields() =>
        AssertAt(StepError("- munmap: { vaddr: 0, size: 4KiB, len: 1 }"), S, 37, "unknown field 'len'; allowed: vaddr, size, process, as, expect");

    [Fact]
    public void Parse_MissingRequiredField_LocatedAtStepArgs() =>
        AssertAt(StepError("- munmap: { vaddr: 0 }"), S, 13, "missing required field 'size'");

    [Fact]
    public void Parse_StepWithTwoKeys_ReportsOneKeyMap() =>
        AssertAt(StepError("- { exit: {}, fork: {} }"), S, 5, "exactly one key");

    [Fact]
    public void Parse_UnknownErrno_LocatedAtValue() =>
        AssertAt(StepError("- open: { path: /dev/vfio/vfio, expect: EWHAT }"), S, 43, "unknown errno name 'EWHAT'");

    [Fact]
    public void Parse_UnknownErrnoInExpectMap_LocatedAtValue() =>
        AssertAt(StepError("- open: { path: /x, expect: { errno: ENOPE } }"), S, 40, "unknown errno name 'ENOPE'");

    [Fact]
    public void Parse_BadFlagName_LocatedAtItem() =>
        AssertAt(StepError("- open: { path: /x, as: c }", "- map_dma: { fd: c, iova: 0, vaddr: 0, size: 1, flags: [READ, write] }"), S + 1, 65, "'write' is not a flag name");

    [Fact]
    public void Parse_BadExtensionName_LocatedAtValue() =>
        AssertAt(StepError("- check_extension: { fd: 3, extension: TYPE1 }"), S, 42, "expected a linux/vfio.h name");

    [Fact]
    public void Parse_DuplicateBinding_LocatedAtSecond() =>
        AssertAt(StepError("- open: { path: /x, as: c }", "- open: { path: /y, as: c }"), S + 1, 27, "duplicate binding name 'c', first bound at");

    [Fact]
    public void Parse_UnboundReference_LocatedAtValue() =>
        AssertAt(StepError("- close: { fd: nope+1 }"), S, 18, "unknown name 'nope'");

    [Fact]
    public void Parse_UnknownProcess_LocatedAtValue() =>
        AssertAt(StepError("- exit: { process: bash }"), S, 22, "unknown process 'bash'; known: qemu");

    [Fact]
    public void Parse_UnknownDevice_LocatedAtValue() =>
        AssertAt(StepError("- unplug: { device: nic }"), S, 23, "unknown device 'nic'; known: gpu");

    [Fact]
    public void Parse_UnknownInvariant_ListsNames() =>
        AssertAt(StepError("- expect_violation: { invariant: tidy }"), S, 36, "allowed: mappings-disjoint");

    [Fact]
    public void Parse_CheckWithTwoItems_LocatedAtSecond() =>
        AssertAt(StepError("- check: { pinned_pages: 1, invariants: clean }"), S, 43, "give only one of");

    [Theory]
    [InlineData("- check: { process: qemu, pinned_pages: 0 }", 14, "'process' does not apply to a check")]
    [InlineData("- check: { pinned_pages: 0, as: c }", 31, "'as' does not apply to a check")]
    [InlineData("- check: { invariants: clean, expect: ok }", 33, "'expect' does not apply to a check")]
    public void Parse_CheckWithACommonField_LocatedAtTheField(string step, int column, string reason) =>
        AssertAt(StepError(step), S, column, reason);

    [Fact]
    public void Parse_MmapRegionWithoutSize_LocatedAtStepArgs() =>
        AssertAt(StepError("- mmap_region: { device_fd: 3, index: 0 }"), S, 18, "mmap_region: missing required field 'size'");

    [Fact]
    public void Parse_WriteFillWithoutSize_LocatedAtFill() =>
        AssertAt(StepError("- write: { vaddr: 0, fill: 1 }"), S, 30, "needs 'size'");

    [Fact]
    public void Parse_FaultOutsideDma_Rejected() =>
        AssertAt(StepError("- open: { path: /x, expect: fault }"), S, 31, "expected ok, an errno name or a map");

    [Fact]
    public void Parse_DeepNesting_Rejected()
    {
        string deep = "vfiolab: 1\nsteps: []\nname: " + new string('[', 100) + new string(']', 100) + "\n";

        AssertAt(ScenarioSamples.Error(deep), 3, 6 + 32, "nesting deeper than 32");
    }

    [Fact]
    public void Parse_AliasBomb_Rejected()
    {
        var text = new System.Text.StringBuilder("vfiolab: 1\nsteps: []\nx:\n  a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n");
        for (int i = 1; i < 10; i++)
        {
            text.Append($"  a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n");
        }

        Assert.Contains("more than", ScenarioSamples.Error(text.ToString()).Message);
    }

    [Fact]
    public void Parse_SecondDocument_Rejected() =>
        AssertAt(ScenarioSamples.Error("vfiolab: 1\nsteps: []\n---\nvfiolab: 1\n"), 3, 1, "one YAML document");
}
