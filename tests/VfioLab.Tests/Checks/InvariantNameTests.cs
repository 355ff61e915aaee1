using System.Text.RegularExpressions;
using VfioLab.Checks;

namespace VfioLab.Tests.Checks;

/// <summary>The invariant names are defined once, in <see cref="InvariantName"/>: the checker reports through those
/// constants only, and Lab's public list is the same.</summary>
public sealed partial class InvariantNameTests
{
    [Fact]
    public void Checker_ReportsThroughTheConstantsOnly_NeverAStringLiteral()
    {
        string dir = Path.Combine(Abi.ConformanceProgram.FindRepositoryRoot(), "src", "VfioLab.Model", "Checks");
        string[] files = Directory.GetFiles(dir, "InvariantChecker*.cs");
        Assert.NotEmpty(files);
        foreach (string file in files)
        {
            string source = File.ReadAllText(file);
            Assert.False(LiteralName().IsMatch(source), $"{Path.GetFileName(file)} names an invariant by a string literal: {LiteralName().Match(source).Value}");
        }
    }

    [Fact]
    public void LabInvariantNames_AreTheCheckersNames()
    {
        Assert.Equal(InvariantName.All, VfioLab.Lab.InvariantNames.All);
        Assert.Equal(InvariantName.All, InvariantChecker.Checked);
        Assert.Equal(InvariantName.All.Count, InvariantName.All.Distinct(StringComparer.Ordinal).Count());
    }

    [GeneratedRegex("""(Report\(found,|found\.Add\(new\()\s*(\w+\s*\?\s*)?"[a-z]+(-[a-z]+)+"|\?\s*"[a-z]+(-[a-z]+)+"\s*:\s*"[a-z]+(-[a-z]+)+"\s*,""")]
    private static partial Regex LiteralName();
}
