using VfioLab.Addressing;

namespace VfioLab.Host;

/// <summary>
/// One virtual memory area of an address space (struct vm_area_struct): a page-aligned range with
/// flags, a page offset into its backing and the objects behind it.
/// </summary>
/// <remarks>Immutable: a split or a fork makes new <see cref="Vma"/> objects (with vm_pgoff adjusted),
/// so a reference held by a driver names exactly one range. Protected as a member of
/// <see cref="Mm"/>'s VMA map by that address space's mmap lock.</remarks>
internal sealed class Vma
{
    internal Vma(AddressSpace mm, ulong startPage, ulong lastPage, VmFlags flags, VmaKind kind, ulong vmPgoff,
        ulong hugePages, IVmaOperations? operations, MappingSpace? mapping, OpenFile? file, object? privateData,
        SharedBacking? backing, bool hugePfnMap)
    {
        Mm = mm;
        StartPage = startPage;
        LastPage = lastPage;
        Flags = flags;
        Kind = kind;
        VmPgoff = vmPgoff;
        HugePages = hugePages;
        Operations = operations;
        Mapping = mapping;
        File = file;
        PrivateData = privateData;
        Backing = backing;
        HugePfnMap = hugePfnMap;
    }

    /// <summary>The address space the VMA belongs to (vm_mm).</summary>
    public AddressSpace Mm { get; }

    /// <summary>First virtual page number (vm_start &gt;&gt; PAGE_SHIFT).</summary>
    public ulong StartPage { get; }

    /// <summary>Last virtual page number, inclusive.</summary>
    public ulong LastPage { get; }

    /// <summary>vm_flags.</summary>
    public VmFlags Flags { get; }

    /// <summary>What backs the VMA.</summary>
    public VmaKind Kind { get; }

    /// <summary>vm_pgoff: the page offset of <see cref="Start"/> in the backing object (for remap_pfn_range
    /// mappings, the first pfn).</summary>
    public ulong VmPgoff { get; }

    /// <summary>Frames per fault unit: 1, or the huge page size in frames for hugetlb.</summary>
    public ulong HugePages { get; }

    /// <summary>The driver's callbacks, for driver mappings.</summary>
    public IVmaOperations? Operations { get; }

    /// <summary>The address_space whose unmap_mapping_range zaps this VMA, if any.</summary>
    public MappingSpace? Mapping { get; }

    /// <summary>vm_file: holds a reference on the open file for the VMA's lifetime.</summary>
    public OpenFile? File { get; }

    /// <summary>vm_private_data, for the driver.</summary>
    public object? PrivateData { get; }

    /// <summary>Whether a PFNMAP driver maps naturally aligned PMD/PUD blocks (huge_fault, v6.12+), which
    /// <see cref="AddressSpace.TryFollowPfnmapLocked"/> reports as multi-page blocks.</summary>
    public bool HugePfnMap { get; }

    internal SharedBacking? Backing { get; }

    /// <summary>vm_start.</summary>
    public HostVirtAddr Start => new(StartPage << Mm.PageShift);

    /// <summary>The last byte, inclusive (vm_end - 1).</summary>
    public HostVirtAddr Last => new(((LastPage + 1) << Mm.PageShift) - 1);

    /// <summary>Pages covered.</summary>
    public ulong PageCount => LastPage - StartPage + 1;

    /// <summary>Whether GUP refuses the VMA (VM_PFNMAP or VM_IO).</summary>
    public bool IsPfnMapOrIo => (Flags & (VmFlags.PfnMap | VmFlags.Io)) != 0;

    /// <summary>Whether the VMA is writable (VM_WRITE).</summary>
    public bool IsWritable => (Flags & VmFlags.Write) != 0;

    /// <summary>Whether the VMA is readable (VM_READ).</summary>
    public bool IsReadable => (Flags & VmFlags.Read) != 0;

    /// <summary>Whether the VMA's present pages are private copies holding a frame reference per PTE
    /// (private anonymous and private hugetlb): what fork makes copy-on-write.</summary>
    internal bool PtesHoldRefs => Kind == VmaKind.Anonymous || (Kind == VmaKind.HugeTlb && (Flags & VmFlags.Shared) == 0);

    /// <summary>The page offset (vm_pgoff space) of virtual page <paramref name="page"/>.</summary>
    public ulong PgoffOf(ulong page) => VmPgoff + (page - StartPage);

    /// <summary>The page offset of <paramref name="address"/>.</summary>
    public ulong PgoffOf(HostVirtAddr address) => PgoffOf(address.Value >> Mm.PageShift);

    /// <summary>Whether the byte lies inside the VMA.</summary>
    public bool Contains(HostVirtAddr address) => (address.Value >> Mm.PageShift) is var p && p >= StartPage && p <= LastPage;

    internal Vma Slice(ulong startPage, ulong lastPage) =>
        new(Mm, startPage, lastPage, Flags, Kind, PgoffOf(startPage), HugePages, Operations, Mapping, File, PrivateData, Backing, HugePfnMap);

    internal Vma CloneInto(AddressSpace child) =>
        new(child, StartPage, LastPage, Flags, Kind, VmPgoff, HugePages, Operations, Mapping, File, PrivateData, Backing, HugePfnMap);

    /// <inheritdoc />
    public override string ToString() => $"vma [{Start}, {Last}] {Kind} {Flags} pgoff 0x{VmPgoff:x}";
}
