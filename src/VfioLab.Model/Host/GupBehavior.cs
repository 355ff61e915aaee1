namespace VfioLab.Host;

/// <summary>
/// The mm switches that differ between the kernels the model replays, as GUP sees them (set from the kernel
/// profile; never changes after the machine is built).
/// </summary>
/// <param name="LongTermPinUnsharesZeroPage">A long-term read-only pin (FOLL_PIN | FOLL_LONGTERM without FOLL_WRITE,
/// type1's pin of a mapping without IOMMU_WRITE) of a private ("COW") mapping never returns the shared zero page: it
/// unshares it first (FAULT_FLAG_UNSHARE), so the pin lands on a fresh exclusive anonymous page of the process, which
/// type1 charges to locked_vm and which later CPU writes reach. Since 84209e87c696 ("mm/gup: reliable R/O long-term
/// pinning in COW mappings", David Hildenbrand, 16 Nov 2022, v6.2). Off (<c>linux-6.1</c>): GUP returns the zero
/// page itself, which type1 treats as reserved (not charged, one-page chunks), and a CPU write after the pin moves the
/// process to a copy the device never sees.</param>
internal sealed record GupBehavior(bool LongTermPinUnsharesZeroPage = true)
{
    /// <summary>Today's GUP (v6.2 on).</summary>
    public static GupBehavior Default { get; } = new();
}
