using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Lab;

/// <summary>
/// Why the model refused a call: the errno, the kernel check that returned it (its function as Linux names it, such as
/// <c>vfio_dma_do_map</c>, <c>vfio_iommu_iova_dma_valid</c> or <c>vfio_pin_pages_remote</c>), the values involved in
/// words, and the profile switch, quirk or commit the answer depends on when it does. Read it from
/// <see cref="LabProcess.LastRefusal"/>, <see cref="LabHost.LastRefusal"/>, <see cref="LabDevice.LastRefusal"/>, or the
/// <c>refused_by</c>, <c>reason</c> and <c>source</c> fields of a failed call's <c>syscall</c> trace event.
/// </summary>
/// <param name="Errno">The errno the call failed with.</param>
/// <param name="Check">The kernel function that refused.</param>
/// <param name="Reason">The values in words, such as <c>[0xfee00000, 0xfeffffff] overlaps the msi reserved region
/// [0xfee00000, 0xfeefffff] of group 1</c>.</param>
/// <param name="Source">The profile switch, quirk or commit behind the answer, or null when every modelled kernel answers
/// so.</param>
public sealed record LabRefusal(Errno Errno, string Check, string Reason, string? Source)
{
    /// <summary><c>ERRNO: reason (check)</c>, with the source after the check when there is one.</summary>
    public override string ToString() => $"{Errno}: {Reason} ({Check}{(Source is null ? string.Empty : "; " + Source)})";

    internal static LabRefusal? From(Refusal r) => r.IsSet ? new LabRefusal(r.Errno, r.Check, r.Reason, r.Source) : null;
}
