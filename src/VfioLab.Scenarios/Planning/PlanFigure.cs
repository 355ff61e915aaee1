namespace VfioLab.Scenarios.Planning;

/// <summary>One number a plan answers, with the rule that produced it and what the model measured running the same
/// map sequence.</summary>
/// <param name="Subject">What it is about: <c>process qemu</c>, <c>container 0</c>, <c>domain 0</c>.</param>
/// <param name="Quantity">What is counted: <c>locked_vm_bytes</c>, <c>dma_entries</c>, <c>ioptes</c>,
/// <c>ioptes_2M</c> (by page size), <c>page_table_bytes</c>.</param>
/// <param name="Needed">The value the rule gives.</param>
/// <param name="Measured">The peak the model reached running the plan's scenario, or null when it was not run.</param>
/// <param name="Limit">The limit it is judged against (RLIMIT_MEMLOCK asked about, <c>dma_entry_limit</c>), or null.</param>
/// <param name="Rule">The rule, with its numbers.</param>
public sealed record PlanFigure(string Subject, string Quantity, ulong Needed, ulong? Measured, ulong? Limit, string Rule)
{
    /// <summary>Whether the model agreed with the rule (true when it was not run).</summary>
    public bool Agrees => Measured is null || Measured == Needed;
}
