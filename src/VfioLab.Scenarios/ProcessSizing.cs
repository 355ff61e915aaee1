namespace VfioLab.Scenarios;

/// <summary>One process's locked memory over a run.</summary>
/// <param name="Name">The process, as <c>name[pid]</c>.</param>
/// <param name="PeakLockedBytes">The highest <c>locked_vm</c> seen after any step, in bytes.</param>
/// <param name="FinalLockedBytes"><c>locked_vm</c> after the last step, in bytes.</param>
/// <param name="MemlockLimitBytes">RLIMIT_MEMLOCK in bytes (<see cref="ulong.MaxValue"/>: unlimited).</param>
/// <param name="CapIpcLock">The process holds CAP_IPC_LOCK, so its locked memory is not limited.</param>
public sealed record ProcessSizing(string Name, ulong PeakLockedBytes, ulong FinalLockedBytes, ulong MemlockLimitBytes, bool CapIpcLock);
