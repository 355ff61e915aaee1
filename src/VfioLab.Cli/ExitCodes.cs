namespace VfioLab.Cli;

/// <summary>The one place where outcomes become process exit codes.</summary>
internal static class ExitCodes
{
    /// <summary>Every step met its expectation and no invariant broke unexpectedly.</summary>
    public const int Success = 0;

    /// <summary>A step missed its expectation or an invariant broke (for <c>fuzz</c>: a violation was found; for
    /// <c>probe</c>: there is no VFIO to probe).</summary>
    public const int ScenarioFailed = 1;

    /// <summary>The command line or a scenario file is malformed; nothing ran.</summary>
    public const int UsageOrInputError = 2;

    /// <summary>The model itself failed (a bug: a broken invariant of its own code): reported with its stack.
    /// Nothing a file, a command line or the machine's I/O can do reaches it (<see cref="ForException"/>).</summary>
    public const int InternalError = 70;

    /// <summary>An output could not be written (the trace, a report, standard output: a full disk, <c>/dev/full</c>,
    /// a closed pipe); EX_IOERR of sysexits.h. A run prints its outcome first.</summary>
    public const int OutputError = 74;

    /// <summary>What an exception that escaped a command means: input the model refuses (a scenario or a host
    /// description) is 2, an I/O error 74, anything else a bug of the model, 70.</summary>
    public static int ForException(Exception e) => e switch
    {
        Scenarios.ScenarioParseException or Lab.LabConfigurationException => UsageOrInputError,
        IOException or UnauthorizedAccessException => OutputError,
        _ => InternalError,
    };

    /// <summary>A run of scenario files: malformed input wins (nothing ran), then any failed scenario.</summary>
    public static int ForRun(bool malformed, bool anyFailed) =>
        malformed ? UsageOrInputError : anyFailed ? ScenarioFailed : Success;

    /// <summary>A fuzz campaign: 1 when it found any violation.</summary>
    public static int ForFuzz(int violations) => violations == 0 ? Success : ScenarioFailed;

    /// <summary>A plan: 1 when a limit given is too small, or the model did not confirm the plan's rules.</summary>
    public static int ForPlan(bool shortOrDisagreeing) => shortOrDisagreeing ? ScenarioFailed : Success;

    /// <summary>A probe: 1 when there was no usable VFIO to probe.</summary>
    public static int ForProbe(bool foundVfio) => foundVfio ? Success : ScenarioFailed;
}
