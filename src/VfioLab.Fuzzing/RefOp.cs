using System.Globalization;

namespace VfioLab.Fuzzing;

/// <summary>What one operation of a differential sequence does.</summary>
internal enum RefOpKind
{
    /// <summary>MAP_DMA: iova <c>A</c>, vaddr <c>B</c>, size <c>C</c>, prot <c>D</c> / 2 (indices into the tables); from the
    /// child when <c>D</c> is odd; <c>D</c> from 48: the BAR's mmap instead of vaddr <c>B</c> (from the VMM).</summary>
    Map,

    /// <summary>UNMAP_DMA of iova <c>A</c>, size <c>C</c>; <c>D</c> odd: with ALL (iova and size then 0).</summary>
    Unmap,

    /// <summary>UNMAP_DMA with GET_DIRTY_BITMAP over iova <c>A</c>, size <c>C</c>.</summary>
    UnmapDirty,

    /// <summary>DIRTY_PAGES START.</summary>
    DirtyStart,

    /// <summary>DIRTY_PAGES STOP.</summary>
    DirtyStop,

    /// <summary>DIRTY_PAGES GET_BITMAP over iova <c>A</c>, size <c>C</c>.</summary>
    DirtyGet,

    /// <summary>Open group <c>A</c> (2: same IOMMU as the GPU, 3: the 64 KiB SMMU) and SET_CONTAINER.</summary>
    Attach,

    /// <summary>Close group <c>A</c>'s fd (detach).</summary>
    Detach,

    /// <summary>The VMM forks; later maps may come from the child (<c>D</c> odd on a map).</summary>
    Fork,

    /// <summary>The child exits.</summary>
    ChildExit,

    /// <summary>The GPU DMA-reads (<c>D</c> even) or writes 8 bytes at iova <c>A</c> + <c>B</c> pages.</summary>
    Dma,

    /// <summary>Open the mdev's group (10, emulated), SET_CONTAINER, and open its device (the vendor driver).</summary>
    MdevAttach,

    /// <summary>Close the mdev's device fd (its driver unpins everything) and its group fd.</summary>
    MdevDetach,

    /// <summary>Open the GPU's group (1) again and SET_CONTAINER.</summary>
    GpuAttach,

    /// <summary>Close the GPU's group fd: with the mdev in the container, the last IOMMU domain may go (re-accounting).</summary>
    GpuDetach,

    /// <summary>vfio_pin_pages from the mdev: iova <c>A</c> + <c>B</c> pages, count <c>C</c>, prot <c>D</c> (rw, r, w).</summary>
    Pin,

    /// <summary>vfio_unpin_pages from the mdev: iova <c>A</c> + <c>B</c> pages, count <c>C</c>.</summary>
    Unpin,

    /// <summary>vfio_dma_rw from the mdev: iova <c>A</c> + <c>B</c> pages (+ 0xffc when <c>C</c> is odd), length
    /// <c>C</c>/2, <c>D</c> even a read, odd a write; <c>D</c>/2 picks the caller (a kernel thread, the VMM, the child).</summary>
    DmaRw,

    /// <summary>UNMAP_DMA with VADDR: three times in four the (<c>A</c>/4)-th mapping's range (<c>C</c> % 3 == 0: up to
    /// the last mapping's end), else iova <c>A</c>, size <c>C</c>; <c>D</c> odd: with ALL (iova and size then 0).</summary>
    UnmapVaddr,

    /// <summary>MAP_DMA with VADDR: three times in four the (<c>A</c>/4)-th mapping's iova and size, else iova <c>A</c>,
    /// size <c>C</c>; vaddr the mapping's own (<c>B</c> % 3 == 0) or vaddr <c>B</c>/3; from the child when <c>D</c> is odd.</summary>
    MapVaddr,

    /// <summary>CHECK_EXTENSION(VFIO_UPDATE_VADDR) on the container.</summary>
    UpdateVaddrExtension,

    /// <summary>The VMM opens the GPU's device (its group 1 held) and mmaps BAR0; map and VADDR picks may then use it.</summary>
    BarOpen,

    /// <summary><c>device_release</c> of the GPU: every file of it closed (seeds: the notifier removes its mappings).</summary>
    DeviceRelease,

    /// <summary><c>run_deferred_work</c> (seeds: the release notifier's unregistration).</summary>
    DeferredWork,

    /// <summary>PCI_COMMAND memory decode of the GPU through its device fd: <c>D</c> odd on, even off.</summary>
    Decode,

    /// <summary>VFIO_DEVICE_PCI_HOT_RESET of the GPU's slot (<c>B</c> even) or VFIO_DEVICE_RESET.</summary>
    Reset,
}

/// <summary>One operation of a differential sequence: a kind and four small indices into the value tables of
/// <see cref="DifferentialCampaign"/>, so every generator (the CLI's, FsCheck's) makes only meaningful values
/// and shrinking keeps them meaningful.</summary>
internal readonly record struct RefOp(RefOpKind Kind, int A, int B, int C, int D)
{
    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Kind}({A},{B},{C},{D})");
}
