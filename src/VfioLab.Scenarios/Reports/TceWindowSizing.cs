namespace VfioLab.Scenarios.Reports;

/// <summary>One sPAPR DMA window (a TCE table of a group's PE) over a run: the peak of valid TCEs and the table
/// memory the kernel charges to <c>locked_vm</c> for it (the table and its userspace view).</summary>
internal sealed record TceWindowSizing(string Name, ulong Entries, ulong PeakValid, ulong ChargedBytes);
