using System.Text;
using VfioLab.Cli;
using VfioLab.Lab;
using VfioLab.Scenarios;

namespace VfioLab.Tests.Cli;

/// <summary>Exit 70 is a bug of the model and nothing else: an exception that escapes a command is mapped in one
/// place (<see cref="ExitCodes.ForException"/>), where malformed input and a refused set-up are 2 and an I/O error 74.</summary>
public sealed class ExitCodeMappingTests
{
    public static TheoryData<string, Exception, int> Escaped => new()
    {
        { "parse error", new ScenarioParseException(new SourceLocation("a.yaml", 3, 4), "bad"), ExitCodes.UsageOrInputError },
        { "set-up the model refuses", new LabConfigurationException("no") { Subject = "host", Setting = "memory" }, ExitCodes.UsageOrInputError },
        { "write error", new IOException("No space left on device"), ExitCodes.OutputError },
        { "write to a closed pipe", new IOException("Broken pipe"), ExitCodes.OutputError },
        { "permission", new UnauthorizedAccessException("denied"), ExitCodes.OutputError },
        { "broken invariant", new InvariantViolationException("map_dma of qemu", [new LabViolation(InvariantNames.TranslationBacked, "x")]), ExitCodes.InternalError },
        { "a bug", new InvalidOperationException("model bug"), ExitCodes.InternalError },
    };

    [Theory]
    [MemberData(nameof(Escaped))]
    public void ForException_EachKind_ItsOwnCode(string what, Exception e, int expected)
    {
        Assert.True(ExitCodes.ForException(e) == expected, what);
    }

    [Fact]
    public void Run_StandardOutputFailsToWrite_ExitsWithTheOutputErrorNotInternal()
    {
        var stderr = new StringWriter();

        int code = CliApplication.Run(["run"], new FailingWriter(), stderr);

        Assert.Equal(ExitCodes.OutputError, code);
        Assert.Equal("vfiolab: cannot write the output: No space left on device", stderr.ToString().TrimEnd());
    }

    private sealed class FailingWriter : TextWriter
    {
        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value) => throw new IOException("No space left on device");

        public override void Write(string? value) => throw new IOException("No space left on device");

        public override void WriteLine(string? value) => throw new IOException("No space left on device");
    }
}
