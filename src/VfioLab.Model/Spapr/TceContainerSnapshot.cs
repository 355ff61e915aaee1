using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Spapr;

/// <summary>A consistent copy of one <see cref="TceContainer"/>'s state, taken under its lock, for the invariant
/// checker and the state digest.</summary>
internal sealed record TceContainerSnapshot(
    int ContainerId,
    bool V2,
    bool Enabled,
    bool DefaultWindowPending,
    AddressSpace? Mm,
    AddressSpace? FirstUser,
    ulong LockedPages,
    AddressSpace? LockedMm,
    IReadOnlyList<int> Groups,
    IReadOnlyList<TceWindowSnapshot> Windows,
    IReadOnlyList<MmIommuRegion> Prereg);

/// <summary>One window of a container: the table, the mm its memory is charged to, and its valid TCE runs.</summary>
internal sealed record TceWindowSnapshot(TceTable Table, AddressSpace? ChargedMm, IReadOnlyList<Run<TceEntryRun>> Runs);
