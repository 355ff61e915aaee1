namespace VfioLab.Scenarios;

/// <summary>One sPAPR DMA window (a TCE table of a group's PE) over a run: the peak of valid TCEs and the table
/// memory the kernel charges to <c>locked_vm</c> for it (the table and its userspace view).</summary>
/// <param name="Name">The window: its group, slot, bus range, TCE size, entries and levels.</param>
/// <param name="Entries">TCEs in the window.</param>
/// <param name="PeakValid">The most valid TCEs it held after any step.</param>
/// <param name="ChargedBytes">Table memory charged to <c>locked_vm</c> for it, in bytes.</param>
public sealed record TceWindowSizing(string Name, ulong Entries, ulong PeakValid, ulong ChargedBytes);
