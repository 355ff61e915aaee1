namespace VfioLab.Scenarios.Planning;

/// <summary>What backs guest RAM in the host, which decides how physically contiguous it is and so the largest IOPTE
/// a mapping can use.</summary>
public enum RamBacking
{
    /// <summary>Anonymous memory in 4 KiB pages with no contiguity (THP off): every page its own IOPTE.</summary>
    Anonymous,

    /// <summary>Anonymous memory with transparent huge pages, every 2 MiB-aligned block a huge page (the best case).</summary>
    Thp,

    /// <summary>hugetlbfs with 2 MiB pages.</summary>
    Hugetlb2M,

    /// <summary>hugetlbfs with 1 GiB pages.</summary>
    Hugetlb1G,

    /// <summary>A memfd (shmem) in 4 KiB pages, shared (what vhost-user set-ups use).</summary>
    Memfd,
}
