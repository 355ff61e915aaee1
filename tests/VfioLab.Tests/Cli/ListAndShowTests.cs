using System.Text.RegularExpressions;
using VfioLab.Cli;
using VfioLab.Scenarios;

namespace VfioLab.Tests.Cli;

/// <summary><c>vfiolab list [TEXT]</c> (the built-ins with their descriptions, agreeing with the README's table) and
/// <c>vfiolab show NAME</c> (a built-in's YAML as shipped).</summary>
public sealed partial class ListAndShowTests
{
    [GeneratedRegex(@"^\| `(?<name>[a-z0-9.\-]+)`", RegexOptions.Multiline)]
    private static partial Regex TableRow();

    private static string[] ListedNames(string output) =>
        [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[0].Replace(" (default)", "", StringComparison.Ordinal))];

    [Fact]
    public void List_NoFilter_ShowsEveryBuiltInDefaultFirstWithItsDescription()
    {
        (int code, string output, _) = Cli.Run("list");

        Assert.Equal(ExitCodes.Success, code);
        Assert.StartsWith($"{BuiltInScenarios.DefaultName} (default): ", output, StringComparison.Ordinal);
        Assert.Equal(BuiltInScenarios.Names, ListedNames(output));
        Assert.Contains($"arm-64k: {BuiltInScenarios.DescriptionOf("arm-64k")}", output, StringComparison.Ordinal);
    }

    [Fact]
    public void List_Names_EqualTheReadmeTableOfBuiltIns()
    {
        string readme = File.ReadAllText(Path.Combine(VfioLab.Tests.Abi.ConformanceProgram.FindRepositoryRoot(), "README.md"));
        int start = readme.IndexOf("Built-in scenarios", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no 'Built-in scenarios' table");
        int end = readme.IndexOf("\n\n", readme.IndexOf("|---", start, StringComparison.Ordinal), StringComparison.Ordinal);
        string[] table = [.. TableRow().Matches(readme[start..end]).Select(m => m.Groups["name"].Value)];

        (_, string output, _) = Cli.Run("list");

        Assert.Equal(ListedNames(output), table);
    }

    [Fact]
    public void List_Filter_ShowsOnlyNamesContainingIt()
    {
        (int code, string output, _) = Cli.Run("list", "spapr");

        Assert.Equal(ExitCodes.Success, code);
        string[] names = ListedNames(output);
        Assert.NotEmpty(names);
        Assert.All(names, n => Assert.Contains("spapr", n, StringComparison.Ordinal));
        Assert.Equal(BuiltInScenarios.Names.Count(n => n.Contains("spapr", StringComparison.Ordinal)), names.Length);
    }

    [Fact]
    public void List_FilterMatchingNothing_ExitsTwo()
    {
        (int code, string output, string err) = Cli.Run("list", "no-such-thing");

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.Contains("no built-in scenario's name contains 'no-such-thing'", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Show_BuiltIn_PrintsItsYamlAsShipped()
    {
        (int code, string output, _) = Cli.Run("show", "arm-64k");

        Assert.Equal(ExitCodes.Success, code);
        Assert.Equal(BuiltInScenarios.GetText("arm-64k"), output);
    }

    [Fact]
    public void Show_ItsOutput_RunsAsAFile()
    {
        using var dir = new TempDirectory();
        string path = dir.Write("copy.yaml", Cli.Run("show", "v1-unmap-trap").Out);

        Assert.Equal(ExitCodes.Success, Cli.Run("run", "-q", path).Code);
    }

    [Fact]
    public void Show_UnknownName_ExitsTwoListingTheBuiltIns()
    {
        (int code, string output, string err) = Cli.Run("show", "gpu");

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.Contains("no built-in scenario 'gpu'; built-ins: gpu-passthrough, ", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Show_NoName_ExitsTwo() => Assert.Equal(ExitCodes.UsageOrInputError, Cli.Run("show").Code);
}
