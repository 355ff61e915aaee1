namespace VfioLab.Scenarios.Reports;

/// <summary>One process's locked memory over a run.</summary>
internal sealed record ProcessSizing(string Name, ulong PeakLockedBytes, ulong FinalLockedBytes, ulong MemlockLimitBytes, bool CapIpcLock);
