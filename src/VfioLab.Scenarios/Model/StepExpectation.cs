using VfioLab.Abi;

namespace VfioLab.Scenarios.Model;

/// <summary>What a step must produce: success (<c>ok</c>, the default), an errno, a map of result fields to compare (see <see cref="ExpectMatcher"/>), an IOMMU fault or SIGBUS.</summary>
internal sealed record StepExpectation(StepExpectationKind Kind, Errno Errno, ScenarioNode? Fields, SourceLocation Location)
{
    public static StepExpectation Ok(SourceLocation location) => new(StepExpectationKind.Ok, Errno.None, null, location);

    public static StepExpectation ForErrno(Errno errno, SourceLocation location) => new(StepExpectationKind.Errno, errno, null, location);

    public static StepExpectation ForFields(ScenarioNode map, SourceLocation location) => new(StepExpectationKind.Fields, Errno.None, map, location);

    public static StepExpectation Fault(SourceLocation location) => new(StepExpectationKind.Fault, Errno.None, null, location);

    public static StepExpectation Sigbus(SourceLocation location) => new(StepExpectationKind.Sigbus, Errno.None, null, location);

    public override string ToString() => Kind switch
    {
        StepExpectationKind.Ok => "ok",
        StepExpectationKind.Errno => Errno.ToString(),
        StepExpectationKind.Fault => "fault",
        StepExpectationKind.Sigbus => "SIGBUS",
        _ => "{ " + string.Join(", ", Fields!.Entries.Select(e => e.Key)) + " }",
    };
}
