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

    /// <summary>Where the clients' calls are recorded as a scenario (<c>vfiolab serve --record FILE</c>), written by
    /// <see cref="ServeServer.SaveRecording"/>; null: nothing is recorded. Needs <see cref="RecordHostText"/>.</summary>
    public string? RecordPath { get; init; }

    /// <summary>The text of the scenario file the host was built from: the recorded scenario's host, devices,
    /// processes and first steps.</summary>
    public string? RecordHostText { get; init; }

    /// <summary>That file's name, for the recorded scenario's comments and messages (default <c>host.yaml</c>).</summary>
    public string? RecordHostFile { get; init; }
}
