using VfioLab.Cli;

namespace VfioLab.Tests.Cli;

/// <summary>A misspelled name anywhere in a scenario file — a flag, an extension, an ioctl request, a quirk, an
/// invariant, an errno in <c>expect</c> — is exit 2 at its FILE:LINE:COL before any step runs (even steps written
/// before it), with a message that names what the file says, never a type of the model.</summary>
public sealed class RunParseTimeNameTests : IDisposable
{
    private const string Header = """
        vfiolab: 1
        host: { quirks: [QUIRK] }
        steps:
          - open: { path: /dev/vfio/vfio, as: container }
          - open: { path: /dev/vfio/0, expect: ENOENT }

        """;

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("unmap-owner-check", "  - map_dma: { fd: container, iova: 0, vaddr: 0, size: 4KiB, flags: [READ, WRTIE] }", 6, 76, "unknown flag 'WRTIE' (did you mean 'WRITE'?)")]
    [InlineData("unmap-owner-check", "  - check_extension: { fd: container, extension: VFIO_TYPE1V2_IOMMU }", 6, 50, "unknown extension 'VFIO_TYPE1V2_IOMMU'")]
    [InlineData("unmap-owner-check", "  - set_iommu: { fd: container, type: VFIO_NOIOMMU }", 6, 39, "unknown extension 'VFIO_NOIOMMU'")]
    [InlineData("unmap-owner-check", "  - ioctl: { fd: container, request: VFIO_GET_API, value: 0 }", 6, 38, "unknown ioctl request 'VFIO_GET_API'")]
    [InlineData("unmap-owner-chek", "  - close: { fd: container }", 2, 18, "unknown value 'unmap-owner-chek'")]
    [InlineData("unmap-owner-check", "  - expect_violation: { invariant: pins-balance }", 6, 36, "unknown value 'pins-balance'")]
    [InlineData("unmap-owner-check", "  - close: { fd: container, expect: EBADFILE }", 6, 37, "unknown errno name 'EBADFILE'")]
    [InlineData("unmap-owner-check", "  - close: { fd: container, expect: { result: ENOPE } }", 6, 47, "expect.result: unknown errno name 'ENOPE'")]
    public void Run_UnknownName_ExitsTwoAtItsLocationAndRunsNothing(string quirk, string step, int line, int column, string reason)
    {
        string path = _dir.Write("names.yaml", Header.Replace("QUIRK", quirk, StringComparison.Ordinal) + step + "\n");

        (int code, string output, string err) = Cli.Run("run", path);

        Assert.Equal(ExitCodes.UsageOrInputError, code);
        Assert.Empty(output);
        Assert.StartsWith($"{path}:{line}:{column}: ", err, StringComparison.Ordinal);
        Assert.Contains(reason, err, StringComparison.Ordinal);
        Assert.DoesNotContain("Flags", err, StringComparison.Ordinal);
        Assert.DoesNotContain("VfioLab.", err, StringComparison.Ordinal);
    }
}
