namespace VfioLab.Host;

/// <summary>VMA flags (vm_flags_t, include/linux/mm.h), with the kernel's bit values.</summary>
[Flags]
internal enum VmFlags : ulong
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>VM_READ.</summary>
    Read = 0x1,
    /// <summary>VM_WRITE.</summary>
    Write = 0x2,
    /// <summary>VM_EXEC.</summary>
    Exec = 0x4,
    /// <summary>VM_SHARED: writes reach the backing object, fork shares it.</summary>
    Shared = 0x8,
    /// <summary>VM_PFNMAP: raw pfns with no struct page semantics; GUP refuses it.</summary>
    PfnMap = 0x400,
    /// <summary>VM_IO: memory-mapped I/O; GUP refuses it.</summary>
    Io = 0x4000,
    /// <summary>VM_DONTCOPY: not inherited by fork (MADV_DONTFORK).</summary>
    DontCopy = 0x20000,
    /// <summary>VM_DONTEXPAND.</summary>
    DontExpand = 0x40000,
    /// <summary>VM_HUGETLB: backed by hugetlbfs pages.</summary>
    HugeTlb = 0x400000,
    /// <summary>VM_DONTDUMP.</summary>
    DontDump = 0x4000000,
}
