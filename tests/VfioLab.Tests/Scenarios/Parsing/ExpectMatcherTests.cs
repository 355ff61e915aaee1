using VfioLab.Abi;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Model;

namespace VfioLab.Tests.Scenarios.Parsing;

public sealed class ExpectMatcherTests
{
    /// <summary>The expect map of a <c>close</c> step written with <paramref name="expect"/>.</summary>
    private static ScenarioNode Expect(string expect) =>
        ScenarioSamples.Parse(ScenarioSamples.WithSteps($"- close: {{ fd: 3, expect: {expect} }}")).Steps[0].Expect.Fields!;

    [Fact]
    public void Match_SizeInUnits_MatchesNumber()
    {
        var result = new StepResult().Set("size", 2147483648UL);

        Assert.Empty(ExpectMatcher.Match(Expect("{ size: 2GiB }"), result));
    }

    [Fact]
    public void Match_DifferentNumber_ReportsLocatedMismatch()
    {
        var result = new StepResult().Set("size", 0x1000UL);

        string mismatch = Assert.Single(ExpectMatcher.Match(Expect("{ size: 2GiB }"), result));
        Assert.StartsWith($"{ScenarioSamples.File}:{ScenarioSamples.FirstStepLine}:", mismatch);
        Assert.Contains("expect size: expected 2GiB (0x80000000), got 0x1000", mismatch);
    }

    [Fact]
    public void Match_MissingKey_NamesKeyAndAvailable()
    {
        var result = new StepResult().Set("result", 0L).Set("bytes", ResultValue.FromHex("00"));

        string mismatch = Assert.Single(ExpectMatcher.Match(Expect("{ size: 1 }"), result));
        Assert.Contains("no 'size' (it returned: bytes, result)", mismatch);
    }

    [Fact]
    public void Match_OnlyNamedKeys_OthersIgnored()
    {
        var result = new StepResult().Set("result", 1L).Set("flags", 3UL);

        Assert.Empty(ExpectMatcher.Match(Expect("{ result: 1 }"), result));
    }

    [Fact]
    public void Match_ErrnoName_MatchesStringOrNumber()
    {
        Assert.Empty(ExpectMatcher.Match(Expect("{ errno: EEXIST }"), new StepResult().Set("errno", "EEXIST")));
        Assert.Empty(ExpectMatcher.Match(Expect("{ errno: EEXIST }"), new StepResult().Set("errno", 17UL)));
        Assert.Empty(ExpectMatcher.Match(Expect("{ result: EINVAL }"), new StepResult().Set("result", -22L)));
        Assert.Single(ExpectMatcher.Match(Expect("{ errno: EEXIST }"), new StepResult().Set("errno", "EINVAL")));
    }

    [Fact]
    public void Match_NegativeSigned_ComparesNumerically()
    {
        Assert.Empty(ExpectMatcher.Match(Expect("{ result: -1 }"), new StepResult().Set("result", -1L)));
        Assert.Single(ExpectMatcher.Match(Expect("{ result: 1 }"), new StepResult().Set("result", -1L)));
    }

    [Fact]
    public void Match_Booleans_AcceptOnOff()
    {
        var result = new StepResult().Set("viable", true).Set("container_set", false);

        Assert.Empty(ExpectMatcher.Match(Expect("{ viable: on, container_set: false }"), result));
        Assert.Single(ExpectMatcher.Match(Expect("{ viable: off }"), result));
    }

    [Fact]
    public void Match_HexBytes_IgnoreSpacesAndCase()
    {
        var result = new StepResult().Set("bytes", ResultValue.FromBytes([0xde, 0xad, 0xbe, 0xef]));

        Assert.Empty(ExpectMatcher.Match(Expect("{ bytes: \"DE AD be ef\" }"), result));
        Assert.Single(ExpectMatcher.Match(Expect("{ bytes: \"de ad be ee\" }"), result));
    }

    [Fact]
    public void Match_ListsAndNestedMaps_ComparedRecursively()
    {
        var result = new StepResult()
            .Set("iova_ranges", ResultValue.FromList(
            [
                ResultValue.FromMap(new Dictionary<string, ResultValue> { ["start"] = ResultValue.FromUInt64(0), ["end"] = ResultValue.FromUInt64(0xfedfffff) }),
                ResultValue.FromMap(new Dictionary<string, ResultValue> { ["start"] = ResultValue.FromUInt64(0xfef00000), ["end"] = ResultValue.FromUInt64(ulong.MaxValue) }),
            ]))
            .Set("migration", ResultValue.FromMap(new Dictionary<string, ResultValue> { ["pgsize_bitmap"] = ResultValue.FromUInt64(0x40201000), ["flags"] = ResultValue.FromUInt64(0) }));

        Assert.Empty(ExpectMatcher.Match(
            Expect("{ iova_ranges: [ { start: 0, end: 0xfedfffff }, { start: 0xfef00000 } ], migration: { pgsize_bitmap: 0x40201000 } }"), result));

        IReadOnlyList<string> mismatches = ExpectMatcher.Match(
            Expect("{ iova_ranges: [ { start: 0 }, { start: 1 } ], migration: { flags: 1, max: 2 } }"), result);
        Assert.Equal(3, mismatches.Count);
        Assert.Contains(mismatches, m => m.Contains("expect iova_ranges[1].start:", StringComparison.Ordinal));
        Assert.Contains(mismatches, m => m.Contains("expect migration.flags:", StringComparison.Ordinal));
        Assert.Contains(mismatches, m => m.Contains("no 'max' (it returned: flags, pgsize_bitmap)", StringComparison.Ordinal));
    }

    [Fact]
    public void Match_ListLengthDiffers_ReportsCounts()
    {
        var result = new StepResult().Set("groups", ResultValue.FromList([ResultValue.FromUInt64(1)]));

        Assert.Contains("expected 2 items, got 1", Assert.Single(ExpectMatcher.Match(Expect("{ groups: [1, 2] }"), result)));
    }

    [Fact]
    public void Match_ReferenceWithLookup_Resolves()
    {
        var result = new StepResult().Set("vaddr", 0x7f0000001000UL);

        Assert.Empty(ExpectMatcher.Match(Expect("{ vaddr: ram+0x1000 }"), result, n => n == "ram" ? 0x7f0000000000UL : null));
        Assert.Contains("unknown name 'rom'", Assert.Single(ExpectMatcher.Match(Expect("{ vaddr: rom }"), result, _ => null)));
    }

    [Fact]
    public void Match_ShapeMismatch_Reported()
    {
        var result = new StepResult().Set("size", 1UL);

        Assert.Contains("expected a map", Assert.Single(ExpectMatcher.Match(Expect("{ size: { a: 1 } }"), result)));
    }

    [Fact]
    public void Match_FlagNameList_MatchesExactlyThoseFlags()
    {
        var result = new StepResult().Set("flags", ResultValue.FromFlags(IommuInfoFlags.Pgsizes | IommuInfoFlags.Caps));

        Assert.Empty(ExpectMatcher.Match(Expect("{ flags: [PGSIZES, CAPS] }"), result));
        Assert.Empty(ExpectMatcher.Match(Expect("{ flags: [CAPS, PGSIZES] }"), result));
        Assert.Empty(ExpectMatcher.Match(Expect("{ flags: 3 }"), result));
        Assert.Contains("expected [PGSIZES] (0x1), got 0x3", Assert.Single(ExpectMatcher.Match(Expect("{ flags: [PGSIZES] }"), result)));
    }

    [Fact]
    public void Match_EmptyFlagList_MatchesNoFlags()
    {
        Assert.Empty(ExpectMatcher.Match(Expect("{ flags: [] }"), new StepResult().Set("flags", ResultValue.FromFlags(SpaprInfoFlags.None))));
        Assert.Single(ExpectMatcher.Match(Expect("{ flags: [] }"), new StepResult().Set("flags", ResultValue.FromFlags(SpaprInfoFlags.Ddw))));
        Assert.Empty(ExpectMatcher.Match(Expect("{ flags: [DDW] }"), new StepResult().Set("flags", ResultValue.FromFlags(SpaprInfoFlags.Ddw))));
    }

    [Fact]
    public void Match_UnknownFlagName_ReportsIt()
    {
        var result = new StepResult().Set("flags", ResultValue.FromFlags(IommuInfoFlags.Pgsizes));

        Assert.Contains("expected a list of flag names, got 'DDW'", Assert.Single(ExpectMatcher.Match(Expect("{ flags: [DDW] }"), result)));
    }

    [Fact]
    public void Match_FlagNameListOnPlainNumber_IsAMismatch()
    {
        Assert.Single(ExpectMatcher.Match(Expect("{ flags: [PGSIZES] }"), new StepResult().Set("flags", 1UL)));
    }
}
