namespace VfioLab.Scenarios.Import;

/// <summary>
/// A replayed call where the model's answer is not what the trace says QEMU got: an overlapping re-add the kernel
/// refuses with EEXIST, a range outside the IOMMU's windows (EINVAL), a container past <c>dma_entry_limit</c>
/// (ENOSPC), or a failure QEMU saw that the model's host does not reproduce.
/// </summary>
/// <param name="Location">The trace line the call comes from.</param>
/// <param name="Call">The call as replayed (<c>map_dma iova 0xc0000 size 0x7ff40000 vaddr 0x7f2ff7ec0000</c>).</param>
/// <param name="Qemu">What QEMU got: <c>ok</c> or an errno name.</param>
/// <param name="Model">What the model answers: <c>ok</c> or an errno name.</param>
/// <param name="Reason">The model's reason for a refusal, when it gives one; else null.</param>
public sealed record ReplayDifference(SourceLocation Location, string Call, string Qemu, string Model, string? Reason)
{
    /// <summary><c>LOG:LINE:COLUMN: CALL: QEMU got X, the model answers Y (reason)</c>.</summary>
    public override string ToString() =>
        $"{Location}: {Call}: QEMU got {Qemu}, the model answers {Model}{(Reason is null ? string.Empty : $" ({Reason})")}";
}
