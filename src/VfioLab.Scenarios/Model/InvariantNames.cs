namespace VfioLab.Scenarios.Model;

/// <summary>The fixed invariant names of SCENARIOS.md, used by <c>expect_violation</c> and in reports. Add, never rename.</summary>
internal static class InvariantNames
{
    public static readonly IReadOnlyList<string> All =
    [
        "mappings-disjoint",
        "dma-avail-conserved",
        "domains-agree",
        "translation-backed",
        "locked-vm-matches-charges",
        "locked-vm-within-limit",
        "host-page-charged-once-per-mapping",
        "vpfn-consistent",
        "vaddr-invalid-count",
        "dirty-bitmaps-present",
        "non-pinned-groups-count",
        "mapping-in-iova-range",
        "pgsize-bitmap",
        "group-attached-once",
        "unpin-after-flush",
        "empty-container-clean",
        "pins-balanced",
        "no-cpu-mapping-of-disabled-bar",
        "no-translation-to-released-device",
        "pfnmap-device-referenced",
        "notifier-retry-limit",
        "tce-userspace-consistent",
        "prereg-not-released-while-mapped",
        "container-single-mm",
    ];

    public static bool IsKnown(string name) => All.Contains(name, StringComparer.Ordinal);
}
