namespace VfioLab.Host;

/// <summary>What backs a VMA in the model; the kernel tells these apart by vm_file, vm_ops and vm_flags.</summary>
internal enum VmaKind
{
    /// <summary>Private anonymous memory (MAP_PRIVATE|MAP_ANONYMOUS): frames faulted on first touch, COW on fork.</summary>
    Anonymous,
    /// <summary>Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, shmem): frames owned by a shared object.</summary>
    SharedAnonymous,
    /// <summary>hugetlbfs memory (MAP_HUGETLB): one naturally aligned huge block per fault; private or shared.</summary>
    HugeTlb,
    /// <summary>A driver's VM_PFNMAP mapping with a fault handler (a vfio-pci BAR mmap).</summary>
    DevicePfnMap,
    /// <summary>Another driver's MMIO mapping populated at mmap by remap_pfn_range (vm_pgoff = first pfn).</summary>
    OtherMmio,
}
