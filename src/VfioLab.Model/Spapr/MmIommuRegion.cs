using VfioLab.Collections;
using VfioLab.Host;

namespace VfioLab.Spapr;

/// <summary>
/// A pre-registered memory region (struct mm_iommu_table_group_mem_t, arch/powerpc/mm/book3s64/iommu_api.c):
/// <c>entries</c> system pages from user address <c>ua</c> of one mm, pinned and charged once at registration,
/// with their host addresses (<c>hpas[]</c>, as runs), the largest IOMMU page size they can back
/// (<c>pageshift</c>), a user count (<c>used</c>: containers and lookups holding it) and a mapping count
/// (<c>mapped</c>: 1 plus one per TCE pointing into it; 0 once released).
/// </summary>
/// <remarks>Mutable fields are protected by the owning <see cref="MmIommuContext"/>'s lock (the kernel's
/// <c>mem_list_mutex</c>) or, for <see cref="Mapped"/>, by the calling container's lock (the kernel uses an
/// atomic). Never change: <see cref="Mm"/>, <see cref="Ua"/>, <see cref="Entries"/>, <see cref="PageShift"/>,
/// the hpas.</remarks>
internal sealed class MmIommuRegion
{
    private readonly RunMap<HpaRun> _hpas;

    public MmIommuRegion(AddressSpace mm, ulong ua, ulong entries, int pageShift, RunMap<HpaRun> hpas)
    {
        Mm = mm;
        Ua = ua;
        Entries = entries;
        PageShift = pageShift;
        _hpas = hpas;
    }

    /// <summary>The mm whose context lists the region.</summary>
    public AddressSpace Mm { get; }

    /// <summary><c>ua</c>: first user address.</summary>
    public ulong Ua { get; }

    /// <summary><c>entries</c>: system pages.</summary>
    public ulong Entries { get; }

    /// <summary><c>pageshift</c>: the largest TCE page shift the region can back.</summary>
    public int PageShift { get; }

    /// <summary><c>used</c>.</summary>
    public ulong Used { get; set; } = 1;

    /// <summary><c>mapped</c>: 1 + TCEs into the region while registered; 0 once released.</summary>
    public ulong Mapped { get; set; } = 1;

    /// <summary>Whether the last put released it (pins and charge dropped).</summary>
    public bool Released => Mapped == 0;

    /// <summary>Byte length.</summary>
    public ulong Size(int hostPageShift) => Entries << hostPageShift;

    /// <summary>Whether <c>[ua, ua + size)</c> lies inside the region (<c>mm_iommu_lookup</c>'s test).</summary>
    public bool Contains(ulong ua, ulong size, int hostPageShift) => Ua <= ua && ua - Ua <= Size(hostPageShift) && size <= Size(hostPageShift) - (ua - Ua);

    /// <summary>The hpa run holding system page <paramref name="pageIndex"/> of the region.</summary>
    public bool TryGetHpas(ulong pageIndex, out Run<HpaRun> run) => _hpas.TryGet(pageIndex, out run);

    /// <summary>The hpas as runs (for unpinning and checks; only the registration writes them).</summary>
    public RunMap<HpaRun> Hpas => _hpas;

    /// <inheritdoc />
    public override string ToString() => $"prereg [0x{Ua:x}, +0x{Entries:x} pages] of mm {Mm.OwnerPid} used {Used} mapped {Mapped}";
}
