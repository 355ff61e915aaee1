namespace VfioLab.Cli;

/// <summary>The one place where outcomes become process exit codes.</summary>
internal static class ExitCodes
{
    /// <summary>Every step met its expectation and no invariant broke unexpectedly.</summary>
    public const int Success = 0;

    /// <summary>A step missed its expectation or an invariant broke.</summary>
    public const int ScenarioFailed = 1;

    /// <summary>The command line or the scenario file is malformed; nothing ran.</summary>
    public const int UsageOrInputError = 2;

    /// <summary>The model itself failed (a bug): reported with its stack.</summary>
    public const int InternalError = 70;
}
