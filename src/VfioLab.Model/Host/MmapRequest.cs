using VfioLab.Abi;
using VfioLab.Addressing;

namespace VfioLab.Host;

/// <summary>A file mmap in progress (the vm_area_struct f_op->mmap receives, before it is inserted):
/// the range the core chose and the caller's arguments; the driver completes it with
/// <see cref="CreateVma"/>.</summary>
/// <remarks>Used only during one f_op->mmap call, under the mmap write lock of <see cref="Mm"/>.</remarks>
internal sealed class MmapRequest
{
    internal MmapRequest(AddressSpace mm, OpenFile file, HostVirtAddr address, ulong pageCount, MemoryProtection protection,
        MmapFlags flags, ulong pgoff)
    {
        Mm = mm;
        File = file;
        Address = address;
        PageCount = pageCount;
        Protection = protection;
        Flags = flags;
        Pgoff = pgoff;
    }

    /// <summary>The address space being mapped into.</summary>
    public AddressSpace Mm { get; }

    /// <summary>The file being mapped (vm_file).</summary>
    public OpenFile File { get; }

    /// <summary>vm_start, chosen by the core.</summary>
    public HostVirtAddr Address { get; }

    /// <summary>Length in pages.</summary>
    public ulong PageCount { get; }

    /// <summary>Length in bytes.</summary>
    public ulong Length => PageCount << Mm.PageShift;

    /// <summary>The caller's PROT_* bits.</summary>
    public MemoryProtection Protection { get; }

    /// <summary>The caller's MAP_* flags.</summary>
    public MmapFlags Flags { get; }

    /// <summary>The mmap offset in pages (vm_pgoff as user space passed it).</summary>
    public ulong Pgoff { get; }

    /// <summary>Whether the mapping is MAP_SHARED (VM_SHARED).</summary>
    public bool IsShared => (Flags & MmapFlags.Shared) != 0;

    /// <summary>The VMA created, once <see cref="CreateVma"/> ran.</summary>
    public Vma? Vma { get; private set; }

    /// <summary>Creates the driver's VM_PFNMAP mapping (with <paramref name="extraFlags"/>, usually VM_IO |
    /// VM_DONTEXPAND | VM_DONTDUMP), optionally rewriting vm_pgoff (the historical BAR mmaps stored the
    /// physical pfn there). No page is present until the fault handler inserts pfns, unless the driver
    /// calls <see cref="AddressSpace.InsertPfnsLocked"/> now (remap_pfn_range).</summary>
    public Vma CreateVma(VmFlags extraFlags, IVmaOperations? operations, MappingSpace? mapping, object? privateData,
        ulong? vmPgoff = null, bool hugePfnMap = false)
    {
        if (Vma is not null)
        {
            HostThrowHelper.ThrowInvalidOperation("mmap request already has its VMA");
        }
        VmFlags flags = extraFlags | VmFlags.PfnMap;
        if ((Protection & MemoryProtection.Read) != 0)
        {
            flags |= VmFlags.Read;
        }
        if ((Protection & MemoryProtection.Write) != 0)
        {
            flags |= VmFlags.Write | VmFlags.Read;
        }
        if (IsShared)
        {
            flags |= VmFlags.Shared;
        }
        ulong first = Address.Value >> Mm.PageShift;
        Vma = Mm.InsertVmaLocked(new Vma(Mm, first, first + PageCount - 1, flags, VmaKind.DevicePfnMap, vmPgoff ?? Pgoff, 1,
            operations, mapping, File, privateData, null, hugePfnMap));
        return Vma;
    }
}
