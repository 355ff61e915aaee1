using System.Text;

namespace VfioLab.Cli.Commands.Run;

/// <summary>
/// A report stream (the trace file) that cannot stop a run: the first write that fails (a full disk,
/// <c>/dev/full</c>, a closed pipe) is kept as <see cref="Failure"/> and everything after it is dropped, so the
/// scenario still runs to its outcome, which is printed before the output error is reported with its own exit code.
/// </summary>
internal sealed class GuardedWriter(TextWriter inner) : TextWriter
{
    /// <summary>The first write error, or null.</summary>
    public Exception? Failure { get; private set; }

    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value) => Guard(() => inner.Write(value));

    public override void Write(string? value) => Guard(() => inner.Write(value));

    public override void Write(char[] buffer, int index, int count) => Guard(() => inner.Write(buffer, index, count));

    public override void WriteLine(string? value) => Guard(() => inner.WriteLine(value));

    public override void Flush() => Guard(inner.Flush);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Guard(inner.Dispose);
        }
        base.Dispose(disposing);
    }

    private void Guard(Action write)
    {
        if (Failure is not null)
        {
            return;
        }
        try
        {
            write();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            Failure = e;
        }
    }
}
