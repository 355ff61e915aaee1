namespace VfioLab.Serve;

/// <summary>How <see cref="ServeServer"/> reports what it does.</summary>
public sealed class ServeOptions
{
    /// <summary>Where the server writes what happens that a user should see: clients arriving and leaving, refused
    /// input, internal errors, invariant violations (null: nowhere).</summary>
    public TextWriter? Log { get; init; }

    /// <summary>Where every call is written, one line each: connection, pid, sequence number, call, result (null: not
    /// traced).</summary>
    public TextWriter? Trace { get; init; }

    /// <summary>The directory the path tree is written to (default: the socket path with <c>.root</c> appended).</summary>
    public string? RootPath { get; init; }
}
