using VfioLab.Scenarios;
using VfioLab.Tests.Cli;

namespace VfioLab.Tests.Scenarios;

/// <summary><see cref="ScenarioFile"/>: a host file extended with processes and steps (its sections kept as written),
/// and a scenario written whole or not at all.</summary>
public sealed class ScenarioFileTests
{
    private static ScenarioOutcome Run(string text) => ScenarioRunner.Prepare(ScenarioDocument.Parse(text, "x.yaml")).Execute();

    [Fact]
    public void ExtendHost_KeepsTheSectionsAsWrittenAndAddsProcessesAndStepsAfterTheHosts()
    {
        const string host = """
            vfiolab: 1
            name: h
            # about the host
            host:
              memory: 256MiB   # enough
            devices:
              - { name: nic, address: "0000:02:00.0", group: 7, bars: [ { index: 0, size: 1MiB } ] }
            processes:
              - name: vmm
                memlock: 1GiB
            steps:
              - mmap: { size: 2MiB, as: ram }
            """;
        string text = ScenarioFile.ExtendHost(host, "h.yaml", "h-more", "with \"more\"", ["first line"],
            ["  - { name: extra, memlock: unlimited }"], ["  - open: { process: extra, path: /dev/vfio/7, as: g }"]);
        Assert.StartsWith("# first line\nvfiolab: 1\nname: \"h-more\"\ndescription: \"with ?more?\"\n", text.Replace("\r\n", "\n", StringComparison.Ordinal));
        Assert.Contains("# about the host", text, StringComparison.Ordinal);
        Assert.Contains("  memory: 256MiB   # enough", text, StringComparison.Ordinal);
        ScenarioDocument doc = ScenarioDocument.Parse(text, "x.yaml");
        Assert.Equal("h-more", doc.Name);
        Assert.Equal(2, doc.StepCount);
        Assert.Equal(["extra", "g", "ram", "vmm"], ScenarioFile.NamesIn(doc).Order(StringComparer.Ordinal).ToArray());
        ScenarioOutcome outcome = Run(text);
        Assert.True(outcome.Passed);
        // The host's step still runs in its first process; the added one in its own.
        Assert.Equal(["vmm", "extra"], doc.Processes.Select(p => p.Name).ToArray());
        Assert.Equal(["", "extra"], outcome.Steps.Select(s => s.Process ?? "").ToArray());
    }

    [Fact]
    public void ExtendHost_HostWithStepsButNoProcess_DeclaresMainFirst()
    {
        const string host = "vfiolab: 1\nname: h\nsteps:\n  - mmap: { size: 4KiB }\n";
        string text = ScenarioFile.ExtendHost(host, "h.yaml", "h2", "d", [], ["  - { name: client1 }"], ["  - mmap: { process: client1, size: 4KiB }"]);
        ScenarioOutcome outcome = Run(text);
        Assert.True(outcome.Passed, text);
        Assert.Equal(["main", "client1"], ScenarioDocument.Parse(text, "x.yaml").Processes.Select(p => p.Name).ToArray());
    }

    [Fact]
    public void ExtendHost_NothingAdded_IsStillAScenario()
    {
        string text = ScenarioFile.ExtendHost("{ vfiolab: 1, name: h, host: { memory: 64MiB } }", "h.yaml", "h2", "d", [], [], []);
        ScenarioDocument doc = ScenarioDocument.Parse(text, "x.yaml");
        Assert.Equal(0, doc.StepCount);
        Assert.Contains("memory: 64MiB", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ExtendHost_NotAMapping_IsALocatedError()
    {
        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioFile.ExtendHost("- a\n- b\n", "h.yaml", "n", "d", [], [], []));
        Assert.Equal("h.yaml", e.File);
        Assert.Equal(1, e.Line);
        e = Assert.Throws<ScenarioParseException>(() => ScenarioFile.ExtendHost("a: [\n", "h.yaml", "n", "d", [], [], []));
        Assert.Equal("h.yaml", e.File);
        Assert.True(e.Line >= 1);
    }

    [Fact]
    public void CheckWritable_NamesWhyAndLeavesNothingBehind()
    {
        using var dir = new TempDirectory();
        Assert.Null(ScenarioFile.CheckWritable(Path.Combine(dir.Path, "r.yaml")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
        Assert.Contains("does not exist", ScenarioFile.CheckWritable(Path.Combine(dir.Path, "no", "r.yaml")), StringComparison.Ordinal);
        Assert.Contains("is a directory", ScenarioFile.CheckWritable(dir.Path), StringComparison.Ordinal);
    }

    [Fact]
    public void WriteAtomically_ReplacesTheFileWholeAndLeavesNoTemporary()
    {
        using var dir = new TempDirectory();
        string path = Path.Combine(dir.Path, "r.yaml");
        File.WriteAllText(path, "old");
        ScenarioFile.WriteAtomically(path, "vfiolab: 1\n");
        Assert.Equal("vfiolab: 1\n", File.ReadAllText(path));
        Assert.Single(Directory.EnumerateFileSystemEntries(dir.Path));
        Assert.ThrowsAny<IOException>(() => ScenarioFile.WriteAtomically(Path.Combine(dir.Path, "no", "r.yaml"), "x"));
        Assert.Single(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Theory]
    [InlineData(0x1000UL, "4KiB")]
    [InlineData(3UL << 30, "3GiB")]
    [InlineData(0x1234UL, "0x1234")]
    public void Size_TheLargestUnitThatDivides(ulong bytes, string text) => Assert.Equal(text, ScenarioFile.Size(bytes));

    [Fact]
    public void CleanAndHex_OneLineTextAndHexData()
    {
        Assert.Equal("a?b?c?d", ScenarioFile.Clean("a\"b\\c\nd"));
        Assert.Equal("00ff", ScenarioFile.Hex([0, 255]));
        Assert.Equal("\"\"", ScenarioFile.Hex([]));
    }
}
