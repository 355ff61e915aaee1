using System.Text;
using VfioLab.Cli;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;
using VfioLab.Tests.Cli;
using CliRunner = VfioLab.Tests.Cli.Cli;

namespace VfioLab.Tests.Robustness;

/// <summary>Every case of issue 17's "Why" through <c>vfiolab run</c>: a host description the model cannot build
/// is exit 2 with its exact located message before anything runs, never exit 70; input is read in bounded size;
/// what a file controls is printed escaped; an output that cannot be written has its own exit code, after the
/// outcome.</summary>
public sealed class HostDescriptionRegressionTests : IDisposable
{
    private const string Steps = "steps:\n  - open: { path: /dev/vfio/vfio }\n";

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, string, string> RefusedHosts => new()
    {
        {
            "group behind two IOMMUs",
            "devices:\n  - { name: a, address: \"0000:01:00.0\", group: 5 }\n  - { name: b, address: \"0000:02:00.0\", group: 5, iommu: smmu-v3 }\n",
            "4:48: devices of IOMMU group 5 sit behind different IOMMUs ('a' and 'b')"
        },
        {
            "mdev given a PCI device's group",
            "devices:\n  - { name: gpu, address: \"0000:01:00.0\", group: 3 }\n  - { name: m, driver: mdev, address: \"11111111-2222-3333-4444-555555555555\", group: 3 }\n",
            "4:86: mdev 'm' needs an emulated group of its own; group 3 is also device 'gpu'"
        },
        {
            "BAR of size 1",
            "devices:\n  - { name: gpu, address: \"0000:01:00.0\", bars: [ { index: 0, size: 1 } ] }\n",
            "3:69: device 'gpu': BAR 0 size 0x1 is below the 16 bytes of the smallest memory BAR (PCI)"
        },
        {
            "BAR of 2^63",
            "devices:\n  - { name: gpu, address: \"0000:01:00.0\", bars: [ { index: 0, size: 0x8000000000000000 } ] }\n",
            "3:49: device 'gpu': BAR 0 size 0x8000000000000000 does not fit what is left of the MMIO window [0x400000000, 0x7ffffffffffff] (from 0x400000000)"
        },
        {
            "any BAR with 2048 TiB of memory",
            "host: { memory: 2048TiB }\ndevices:\n  - { name: gpu, address: \"0000:01:00.0\", bars: [ { index: 0, size: 4KiB } ] }\n",
            "2:17: host memory 0x8000000000000 exceeds the limit of 0x4000000000000 (1 PiB): RAM and the PCI MMIO window above it share the lower half of the 52-bit physical address space"
        },
        {
            "memory whose MMIO window would wrap to 0",
            "host: { memory: 0xfffffffffffff000 }\ndevices:\n  - { name: gpu, address: \"0000:01:00.0\", bars: [ { index: 0, size: 4KiB } ] }\n",
            "2:17: host memory 0xfffffffffffff000 exceeds the limit of 0x4000000000000 (1 PiB): RAM and the PCI MMIO window above it share the lower half of the 52-bit physical address space"
        },
        {
            "256 GiB in 1-page runs (twice the 128 GiB MAP that once exhausted the machine)",
            "host:\n  memory: 256GiB\n  frames: { layout: scattered, run_pages: 1 }\ndevices:\n  - { name: gpu, address: \"0000:01:00.0\", group: 1 }\n",
            "4:11: host memory 0x4000000000 in scattered runs of 1 page(s) makes 67108864 runs of frames, over the budget of 33554432 runs the model's state is held to (longer runs or less memory fit)"
        },
        {
            "64-bit BAR 5",
            "devices:\n  - { name: nic, address: \"0000:01:00.0\", bars: [ { index: 5, size: 4KiB } ] }\n",
            "3:51: device 'nic': BAR 5 cannot be 64-bit (it would need a sixth BAR register)"
        },
        {
            "a BAR in the upper half of a 64-bit BAR",
            "devices:\n  - { name: nic, address: \"0000:01:00.0\", bars: [ { index: 0, size: 4KiB }, { index: 1, size: 4KiB } ] }\n",
            "3:86: device 'nic': BAR 0 is 64-bit and takes BAR register 1 too"
        },
        {
            "a 32-bit BAR over 2 GiB",
            "devices:\n  - { name: nic, address: \"0000:01:00.0\", bars: [ { index: 0, size: 4GiB, is64bit: false } ] }\n",
            "3:69: device 'nic': BAR 0 size 0x100000000 is over the 2 GiB a 32-bit BAR can decode"
        },
        {
            "IOMMU page size below 4 KiB",
            "host: { iommu_page_sizes: [512, 4KiB] }\n",
            "2:27: IOMMU page size 0x200 is below the smallest IOPTE of any modelled IOMMU (0x1000)"
        },
        {
            "aperture off the IOMMU's page boundary",
            "host: { aperture: { start: 0x800, last: 0xffffffff } }\n",
            "2:19: aperture [0x800, 0xffffffff] does not start and end on a boundary of the IOMMU's smallest page 0x1000"
        },
        {
            "a group whose members disagree on MSI isolation",
            "devices:\n  - { name: a, address: \"0000:01:00.0\", group: 2 }\n  - { name: b, address: \"0000:01:00.1\", group: 2, isolated_msi: false }\n",
            "4:65: devices of IOMMU group 2 disagree on MSI isolation ('a' and 'b'); the model keeps it per group"
        },
        {
            "two mdevs with one UUID",
            "devices:\n  - { name: m1, driver: mdev, address: \"11111111-2222-3333-4444-555555555555\" }\n  - { name: m2, driver: mdev, address: \"11111111-2222-3333-4444-555555555555\" }\n",
            "4:40: devices[1].address: '11111111-2222-3333-4444-555555555555' is already device 'm1'"
        },
    };

    [Theory]
    [MemberData(nameof(RefusedHosts))]
    public void Run_HostTheModelCannotBuild_ExitsTwoAtTheKeyAndRunsNothing(string what, string host, string expected)
    {
        string path = _dir.Write("host.yaml", "vfiolab: 1\n" + host + Steps);

        (int code, string output, string err) = CliRunner.Run("run", path);

        Assert.True(code == ExitCodes.UsageOrInputError, what);
        Assert.Empty(output);
        Assert.Equal($"{path}:{expected}", err.TrimEnd());
    }

    [Fact]
    public void Run_BarOfTheLastByteOfTheWindow_IsPlacedAndRuns()
    {
        // The boundary the refusals stop at: 1 PiB of RAM and a BAR filling what is left of the window run.
        string path = _dir.Write("edge.yaml", "vfiolab: 1\nhost: { memory: 1024TiB }\ndevices:\n  - { name: gpu, address: \"0000:01:00.0\", bars: [ { index: 0, size: 1024TiB } ] }\n" + Steps);

        (int code, string output, string err) = CliRunner.Run("run", path);

        Assert.Equal(ExitCodes.Success, code);
        Assert.Empty(err);
        Assert.Contains("PASSED", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_DevZero_RefusedAtTheLimitWithoutReadingOn()
    {
        (int code, string output, string err) = CliRunner.Run("run", "/dev/zero");

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.Equal($"/dev/zero:1:{ScenarioParser.MaxFileBytes + 1}: the file is longer than 16777216 bytes (16 MiB), the limit of a scenario file; nothing past it was read", err.TrimEnd());
    }

    [Fact]
    public void Run_FileOverTheLimit_RefusedAtTheLineWhereItIsCrossed()
    {
        var text = new StringBuilder("vfiolab: 1\nsteps:\n");
        while (text.Length <= ScenarioParser.MaxFileBytes)
        {
            text.Append("  - open: { path: /dev/vfio/vfio }\n");
        }
        string path = _dir.Write("huge.yaml", text.ToString());
        int line = 1 + text.ToString(0, ScenarioParser.MaxFileBytes).Count(c => c == '\n');

        (int code, _, string err) = CliRunner.Run("run", path);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.StartsWith($"{path}:{line}:", err, StringComparison.Ordinal);
        Assert.Contains("the file is longer than 16777216 bytes (16 MiB)", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_TraceToDevFull_PrintsTheOutcomeThenTheOutputErrorWithItsOwnCode()
    {
        string path = _dir.Write("ok.yaml", "vfiolab: 1\n" + Steps);

        (int code, string output, string err) = CliRunner.Run("run", "--trace", "/dev/full", path);

        Assert.Equal(ExitCodes.OutputError, code);
        Assert.Contains("PASSED: 1 of 1 steps met their expectation", output, StringComparison.Ordinal);
        Assert.StartsWith("vfiolab run: cannot write the trace to '/dev/full': No space left on device", err, StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Fuzz_SecondsNaN_IsRefused()
    {
        (int code, string output, string err) = CliRunner.Run("fuzz", "--seconds", "NaN");

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.StartsWith("vfiolab fuzz: --seconds 'NaN' is not a number of seconds above 0 and at most 604800", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_TabIndentingLineSix_IsLocatedThere()
    {
        string path = _dir.Write("tab.yaml", "vfiolab: 1\nprocesses:\n  - { name: vmm }\nsteps:\n  - open: { path: /dev/vfio/vfio }\n\t- open: { path: /dev/vfio/vfio }\n");

        (int code, _, string err) = CliRunner.Run("run", path);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Equal($"{path}:6:1: YAML: While scanning a mapping, found invalid tab as indentation.", err.TrimEnd());
    }

    [Fact]
    public void Run_EscapeSequencesInNamesAndPaths_ArePrintedEscaped()
    {
        string path = _dir.Write("esc.yaml", "vfiolab: 1\nname: \"evil\\e[2Jname\"\nsteps:\n  - open: { path: \"/dev/\\e]0;title\\a\" }\n");

        (int code, string output, string _) = CliRunner.Run("run", path);
        (int missing, string _, string err) = CliRunner.Run("run", "no\u001b[31mfile\u009b.yaml");

        Assert.Equal(ExitCodes.ScenarioFailed, code);
        Assert.Contains("scenario evil\\x1b[2Jname:", output, StringComparison.Ordinal);
        Assert.Contains("open path=/dev/\\x1b]0;title\\x07 -> ENOENT", output, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', output);
        Assert.Equal(ExitCodes.UsageOrInputError, missing);
        Assert.Equal("'no\\x1b[31mfile\\u009b.yaml': no such file or directory", err.TrimEnd());
    }

    [Fact]
    public void Parse_PlainSeventyThousandSteps_IsWithinTheDocumentBudget()
    {
        var text = new StringBuilder("vfiolab: 1\nsteps:\n");
        for (int i = 0; i < 70_000; i++)
        {
            text.Append("  - open: { path: /dev/vfio/vfio }\n");
        }

        ScenarioDocument doc = ScenarioParser.Parse(text.ToString(), "long.yaml");

        Assert.Equal(70_000, doc.Steps.Count);
    }

    [Fact]
    public void Parse_MoreNodesWrittenThanTheBudget_IsRefusedAsWrittenNotAsAliases()
    {
        var text = new StringBuilder("vfiolab: 1\nsteps: [");
        for (int i = 0; i <= YamlTreeLoader.MaxNodes; i++)
        {
            text.Append("1,");
        }
        text.Append("1]\n");

        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioParser.Parse(text.ToString(), "wide.yaml"));

        Assert.Equal($"more than {YamlTreeLoader.MaxNodes} YAML nodes written (keys included), the limit of a scenario file", e.Reason);
        Assert.Equal(2, e.Line);
    }

    [Fact]
    public void Parse_AliasBomb_IsRefusedAsAliasExpansion()
    {
        var text = new StringBuilder("vfiolab: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (int i = 1; i < 8; i++)
        {
            text.Append($"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n");
        }
        text.Append("steps: []\n");

        ScenarioParseException e = Assert.Throws<ScenarioParseException>(() => ScenarioParser.Parse(text.ToString(), "bomb.yaml"));

        Assert.Equal($"aliases expand to more than {YamlTreeLoader.MaxAliasNodes} nodes beyond those written", e.Reason);
    }
}
