namespace VfioLab.Host;

/// <summary>The outcome of a CPU access to process memory (what the user sees: success, SIGSEGV,
/// SIGBUS, or the OOM killer).</summary>
internal enum AccessResult
{
    /// <summary>Every byte was read or written.</summary>
    Ok,
    /// <summary>Unmapped, unreadable or unwritable address (SIGSEGV; EFAULT through a syscall).</summary>
    Fault,
    /// <summary>A fault handler refused the page (SIGBUS), e.g. a zapped or disabled BAR, or no huge page.</summary>
    SigBus,
    /// <summary>No frame could be allocated for the fault.</summary>
    NoMemory,
}
