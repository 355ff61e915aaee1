using Xunit;

namespace VfioLab.Tests.Concurrency;

/// <summary>A fact that runs only when <c>VFIOLAB_SOAK</c> is set (a number of seeds), skipped otherwise: the
/// long stress runs stay out of the normal suite.</summary>
public sealed class SoakFactAttribute : FactAttribute
{
    /// <summary>The environment variable naming how many seeds a soak runs.</summary>
    public const string Variable = "VFIOLAB_SOAK";

    public SoakFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Variable)))
        {
            Skip = $"soak: set {Variable}=<seeds> to run";
        }
    }
}
