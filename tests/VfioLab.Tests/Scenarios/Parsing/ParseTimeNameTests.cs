using VfioLab.Scenarios;

namespace VfioLab.Tests.Scenarios.Parsing;

/// <summary>Every name a step refers to (flags, extensions, ioctl requests, errnos inside <c>expect</c>) is checked
/// when the file is parsed, so a misspelling is refused at its line and column before any step runs, and the message
/// names only what the file says (never a type of the model).</summary>
public sealed class ParseTimeNameTests
{
    private const int S = ScenarioSamples.FirstStepLine;

    private static ScenarioParseException StepError(params string[] steps) => ScenarioSamples.Error(ScenarioSamples.WithSteps(steps));

    private static void AssertAt(ScenarioParseException e, int line, int column, string fragment)
    {
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.StartsWith($"{ScenarioSamples.File}:{line}:{column}: ", e.Message);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Flags", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_UnknownMapDmaFlag_RefusedAtItemWithAllowedNames() =>
        AssertAt(StepError("- open: { path: /x, as: c }", "- map_dma: { fd: c, iova: 0, vaddr: 0, size: 1, flags: [READ, REED] }"),
            S + 1, 65, "unknown flag 'REED' (did you mean 'READ'?); allowed: READ, WRITE");

    [Fact]
    public void Parse_MapFlagOnUnmap_Refused() =>
        AssertAt(StepError("- open: { path: /x, as: c }", "- unmap_dma: { fd: c, iova: 0, size: 1, flags: [WRITE] }"),
            S + 1, 51, "unknown flag 'WRITE'");

    [Fact]
    public void Parse_UnknownDirtyPagesFlag_Refused() =>
        AssertAt(StepError("- open: { path: /x, as: c }", "- dirty_pages: { fd: c, op: start, flags: [BEGIN] }"),
            S + 1, 46, "unknown flag 'BEGIN'; allowed: START, STOP, GET_BITMAP");

    [Fact]
    public void Parse_UnknownExtensionName_RefusedWithKnownNames() =>
        AssertAt(StepError("- check_extension: { fd: 3, extension: VFIO_TYPE2_IOMMU }"), S, 42,
            "unknown extension 'VFIO_TYPE2_IOMMU' (did you mean 'VFIO_TYPE1_IOMMU'?); known: VFIO_TYPE1_IOMMU");

    [Fact]
    public void Parse_UnknownSetIommuType_Refused() =>
        AssertAt(StepError("- set_iommu: { fd: 3, type: VFIO_TYPE3_IOMMU }"), S, 31, "unknown extension 'VFIO_TYPE3_IOMMU'");

    [Fact]
    public void Parse_UnknownIoctlRequest_Refused() =>
        AssertAt(StepError("- ioctl: { fd: 3, request: VFIO_IOMMU_MAP_DMAA }"), S, 30,
            "unknown ioctl request 'VFIO_IOMMU_MAP_DMAA' (did you mean 'VFIO_IOMMU_MAP_DMA'?)");

    [Fact]
    public void Parse_NumericRequestAndExtension_StillAccepted()
    {
        ScenarioDocument doc = ScenarioSamples.Parse(ScenarioSamples.WithSteps(
            "- ioctl: { fd: 3, request: 0x3b71, expect: EBADF }", "- check_extension: { fd: 3, extension: 99, expect: EBADF }"));

        Assert.Equal(2, doc.Steps.Count);
    }

    [Fact]
    public void Parse_UnknownErrnoInsideExpectMap_RefusedAtValue() =>
        AssertAt(StepError("- open: { path: /x, expect: { result: EWHAT } }"), S, 41, "expect.result: unknown errno name 'EWHAT'");

    [Fact]
    public void Parse_UnknownErrnoInNestedExpectList_Refused() =>
        AssertAt(StepError("- open: { path: /x, expect: { list: [ 1, { a: ENOTHING } ] } }"), S, 49, "unknown errno name 'ENOTHING'");

    [Fact]
    public void Parse_KnownErrnoInsideExpectMap_Accepted() =>
        Assert.Single(ScenarioSamples.Parse(ScenarioSamples.WithSteps("- open: { path: /x, expect: { result: ENOENT } }")).Steps);
}
