using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Run;

/// <summary>Why a scenario named on the command line cannot run: a malformed file (located), or an argument that
/// names nothing (no location).</summary>
/// <param name="Location">Where in which file, or null when there is no file.</param>
/// <param name="Reason">The reason, without the location.</param>
internal sealed record InputError(SourceLocation? Location, string Reason)
{
    /// <summary>A malformed file, or a host its scenario describes that cannot be built.</summary>
    public static InputError From(ScenarioParseException e) => new(e.Location, e.Reason);

    /// <summary><c>FILE:LINE:COLUMN: reason</c>, or the reason alone.</summary>
    /// <remarks>What the file or the command line controls (the path, the reason's quotes of it) is escaped
    /// (<see cref="Printable"/>).</remarks>
    public override string ToString() => Printable.Escape(Location is { } at ? $"{at}: {Reason}" : Reason);
}
