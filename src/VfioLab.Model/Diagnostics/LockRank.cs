namespace VfioLab.Diagnostics;

/// <summary>
/// The model's lock classes in the one order they may be taken (DESIGN.md "Concurrency",
/// docs/architecture.md "Locks"): a thread holding a lock of one rank may only take locks of a higher
/// rank. Ranks that <see cref="LockOrder"/> lets nest (two instances of one class held at once) say so.
/// </summary>
internal enum LockRank
{
    /// <summary>vfio-pci's dev_set lock, one per slot (<c>dev_set-&gt;lock</c>): hot reset takes it
    /// before the devices' memory_locks.</summary>
    DevSet = 10,

    /// <summary>A VFIO group's lock (<c>group-&gt;group_lock</c>): SET_CONTAINER, UNSET_CONTAINER,
    /// device open and close.</summary>
    VfioGroup = 20,

    /// <summary>A container's group lock (<c>container-&gt;group_lock</c>): SET_IOMMU, attach, detach.</summary>
    ContainerGroups = 30,

    /// <summary>A mediated-device vendor driver's own lock, held while it calls pin/unpin into the backend.</summary>
    MdevDriver = 40,

    /// <summary>type1's <c>iommu-&gt;lock</c>.</summary>
    Type1 = 50,

    /// <summary>The sPAPR TCE backend's <c>container-&gt;lock</c> (never held with type1's: a container has one backend).</summary>
    SpaprContainer = 55,

    /// <summary>An address space's mmap lock (<c>mmap_lock</c>, reader/writer).</summary>
    Mmap = 60,

    /// <summary>A vfio-pci device's <c>memory_lock</c> (reader/writer): taken for read by the BAR fault
    /// handler under the mmap lock; hot reset try-locks several at once for write.</summary>
    MemoryLock = 70,

    /// <summary>A file's <see cref="Host.MappingSpace"/> lock (<c>i_mmap_rwsem</c>).</summary>
    MappingSpace = 80,

    /// <summary>An address space's page-table lock (the PTE spinlock); fork holds the parent's, then the
    /// child's (nesting allowed).</summary>
    PageTable = 90,

    /// <summary>A shmem/hugetlbfs page cache's lock.</summary>
    SharedBacking = 100,

    /// <summary>An IOMMU domain's page-table lock.</summary>
    IommuDomain = 110,

    /// <summary>A TCE table's lock (the sPAPR IOMMU table, its entries and userspace view).</summary>
    TceTable = 115,

    /// <summary><see cref="Host.PhysicalMemory"/>'s gate (frames, pins, contents): innermost.</summary>
    PhysicalMemory = 120,
}
