namespace VfioLab.Scenarios.Conformance;

/// <summary>What a real machine must offer to run a scenario (<see cref="ScenarioConformance.Describe"/>): the host
/// section, the devices and processes, and the step kinds that need more than system calls.</summary>
/// <param name="Memory">The host's memory in bytes.</param>
/// <param name="PageSize">The host's page size.</param>
/// <param name="Iommu">The IOMMU hardware (<c>vt-d</c>, <c>amd-vi</c>, <c>smmu-v3</c>, <c>spapr-tce</c>).</param>
/// <param name="Devices">The devices, in the order the scenario declares them.</param>
/// <param name="Processes">How many processes the scenario declares.</param>
/// <param name="DmaEntryLimit">vfio_iommu_type1's <c>dma_entry_limit</c>.</param>
/// <param name="DisableHugepages">vfio_iommu_type1's <c>disable_hugepages</c>.</param>
/// <param name="UsesHugeTlb2MiB">Whether a step maps 2 MiB hugetlb pages.</param>
/// <param name="UsesHugeTlb1GiB">Whether a step maps 1 GiB hugetlb pages.</param>
/// <param name="Quirks">The historical quirks switched on.</param>
public sealed record ScenarioTopology(
    ulong Memory,
    ulong PageSize,
    string Iommu,
    IReadOnlyList<TopologyDevice> Devices,
    int Processes,
    ulong DmaEntryLimit,
    bool DisableHugepages,
    bool UsesHugeTlb2MiB,
    bool UsesHugeTlb1GiB,
    IReadOnlyList<string> Quirks)
{
    /// <summary>Whether a step forks: a runner that cannot fork itself needs processes that can.</summary>
    public bool Forks { get; init; }
}
