namespace VfioLab.Lab;

/// <summary>
/// The limits a host description is held to (<see cref="LabHostBuilder.Validate"/>): what the modelled hardware
/// can be, and a budget on the size of the simulated state so that no description can exhaust the machine running
/// the model. docs/scenario-format.md lists them with their reasons.
/// </summary>
public static class LabLimits
{
    /// <summary>Width of the simulated physical address space: 52 bits, the widest x86 (5-level paging) and
    /// Arm (LPA) CPUs address. Its lower half holds RAM and the PCI MMIO window; the upper half is other drivers'
    /// MMIO.</summary>
    public const int PhysicalAddressBits = 52;

    /// <summary>Most host RAM: 1 PiB (2^50 bytes), so that the PCI MMIO window above it (which starts at the next
    /// 1 GiB boundary and runs to 2^51-1) keeps at least 1 PiB - 1 GiB for BARs.</summary>
    public const ulong MaxMemoryBytes = 1UL << 50;

    /// <summary>Smallest memory BAR: 16 bytes (the PCI specification: bits 3:0 of a memory BAR are not address
    /// bits).</summary>
    public const ulong MinMemoryBarBytes = 16;

    /// <summary>Largest 32-bit memory BAR: 2 GiB (a 32-bit BAR decodes below 4 GiB; its size bits leave bit 31 as
    /// the highest).</summary>
    public const ulong Max32BitBarBytes = 1UL << 31;

    /// <summary>Smallest IOMMU page size: 4 KiB, the smallest IOPTE of every IOMMU the model knows (VT-d, AMD-Vi,
    /// SMMUv3, the POWER TCE).</summary>
    public const ulong MinIommuPageBytes = 4096;

    /// <summary>Budget on the simulated state: at most 2^25 (32 Mi) runs of physically contiguous frames in the
    /// host's frame layout (memory divided by the bytes of one scattered run; one for contiguous frames). Every run
    /// can become one extent in each run map the model keeps per page range (pin counts, each domain's page table,
    /// the DMA tree, a process's page table), so the run count bounds the state a whole-memory MAP can build. The
    /// budget counts state, not time: it does not move when the representation gets faster. It was 2^22 while a run
    /// cost 150-330 bytes; since frame state goes dense per window where memory shatters (FrameCountMap) a 64 GiB
    /// MAP on 1-page runs peaks at ~32 bytes of managed heap per run (issue 16, docs/benchmarks.md), so the budget
    /// holds a whole-memory MAP near 1 GiB of heap.</summary>
    public const ulong MaxFrameRuns = 1UL << 25;

    /// <summary>Most devices (PCI functions and mediated devices) on one host: 4096.</summary>
    public const int MaxDevices = 4096;
}
