namespace VfioLab.Scenarios.Model;

/// <summary>The form of an <c>expect:</c>.</summary>
internal enum StepExpectationKind
{
    Ok,
    Errno,
    Fields,
    Fault,
    Sigbus,
}
