namespace VfioLab.Scenarios.Model;

/// <summary>
/// A simulated process of the scenario's <c>processes:</c> list. <c>Memlock</c> is RLIMIT_MEMLOCK
/// in bytes, <see cref="Unlimited"/> (RLIM_INFINITY) for <c>unlimited</c>; default 8 MiB (Linux's
/// default since 5.16).
/// </summary>
internal sealed record ProcessSpec(string Name, ulong Memlock, bool CapIpcLock, SourceLocation Location)
{
    /// <summary>RLIM_INFINITY.</summary>
    public const ulong Unlimited = ulong.MaxValue;

    public const ulong DefaultMemlock = 8UL << 20;

    public bool IsMemlockUnlimited => Memlock == Unlimited;
}
