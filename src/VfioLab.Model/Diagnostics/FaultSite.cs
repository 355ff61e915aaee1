namespace VfioLab.Diagnostics;

/// <summary>
/// A fallible internal step the <see cref="FaultInjector"/> can fail, defined once: every
/// <see cref="FaultInjector.ShouldFail"/> call names one of the members below, so a misspelt site does not
/// compile. Each member names the kernel's fallible step it models; tests/VfioLab.Tests/FailNth/README.md
/// lists which sweep covers it.
/// </summary>
/// <remarks>The constructor is private: the members below are the only sites there are.</remarks>
internal readonly record struct FaultSite
{
    private FaultSite(string name) => Name = name;

    /// <summary>The site's name, as tests and messages print it.</summary>
    public string Name { get; }

    // Host: memory and address spaces.

    /// <summary>A frame allocation (<c>alloc_pages</c>): a page fault, fork's copy or a page table.</summary>
    public static readonly FaultSite Alloc = new("alloc");

    /// <summary>A VMA allocation in mmap (<c>vm_area_alloc</c>).</summary>
    public static readonly FaultSite VmAreaAlloc = new("vm_area_alloc");

    /// <summary>Splitting a VMA (<c>split_vma</c>'s <c>vm_area_dup</c>).</summary>
    public static readonly FaultSite SplitVma = new("split_vma");

    /// <summary>Pinning user pages (<c>pin_user_pages_remote</c>).</summary>
    public static readonly FaultSite Pin = new("pin");

    // IOMMU.

    /// <summary>Allocating an IOMMU domain (<c>iommu_domain_alloc</c>).</summary>
    public static readonly FaultSite IommuDomainAlloc = new("iommu_domain_alloc");

    /// <summary>The driver's attach of a group to a domain (<c>iommu_attach_group</c>).</summary>
    public static readonly FaultSite IommuAttachGroup = new("iommu_attach_group");

    /// <summary>A page-table allocation inside <c>iommu_map</c>.</summary>
    public static readonly FaultSite IommuMap = new("iommu_map");

    /// <summary>Allocating a sPAPR TCE table (<c>iommu_table_group_ops.create_table</c>).</summary>
    public static readonly FaultSite TceTableAlloc = new("tce_table_alloc");

    /// <summary>Programming a sPAPR DMA window (<c>iommu_table_group_ops.set_window</c>).</summary>
    public static readonly FaultSite TceSetWindow = new("tce_set_window");

    // type1.

    /// <summary>Allocating a mapping (<c>vfio_dma_do_map</c>'s <c>kzalloc</c> of a <c>vfio_dma</c>).</summary>
    public static readonly FaultSite DmaAlloc = new("dma_alloc");

    /// <summary>Charging <c>locked_vm</c> (<c>vfio_lock_acct</c>: <c>mmap_write_lock_killable</c> interrupted, EINTR).</summary>
    public static readonly FaultSite LockAcct = new("lock_acct");

    /// <summary>Allocating a dirty bitmap (<c>vfio_dma_bitmap_alloc</c>).</summary>
    public static readonly FaultSite BitmapAlloc = new("bitmap_alloc");

    /// <summary>Allocating an external pin (<c>vfio_add_to_pfn_list</c>'s <c>kzalloc</c> of a <c>vfio_pfn</c>).</summary>
    public static readonly FaultSite VpfnAlloc = new("vpfn_alloc");

    /// <summary>Allocating a type1 group (<c>vfio_iommu_type1_attach_group</c>'s <c>kzalloc</c> of a <c>vfio_iommu_group</c>).</summary>
    public static readonly FaultSite Type1GroupAlloc = new("type1_group_alloc");

    // The VFIO core and its drivers.

    /// <summary>Allocating a container on opening /dev/vfio/vfio (<c>vfio_fops_open</c>).</summary>
    public static readonly FaultSite ContainerAlloc = new("container_alloc");

    /// <summary>Allocating a device file (<c>vfio_allocate_device_file</c>).</summary>
    public static readonly FaultSite DeviceFileAlloc = new("device_file_alloc");

    /// <summary>Creating a device fd's file (<c>anon_inode_getfile</c>), after the device was opened.</summary>
    public static readonly FaultSite AnonInodeGetfile = new("anon_inode_getfile");

    /// <summary>A mediated device's first open (the parent driver's <c>open_device</c>).</summary>
    public static readonly FaultSite MdevOpenDevice = new("mdev_open_device");

    /// <summary>Enabling a PCI function on first open (<c>pci_enable_device</c> in <c>vfio_pci_core_enable</c>).</summary>
    public static readonly FaultSite PciEnableDevice = new("pci_enable_device");

    /// <summary>Allocating the virtual config space on first open (<c>vfio_config_init</c>).</summary>
    public static readonly FaultSite VfioConfigInit = new("vfio_config_init");

    /// <summary>Mapping a BAR for the kernel (<c>pci_iomap</c>, <c>vfio_pci_core_setup_barmap</c>).</summary>
    public static readonly FaultSite PciIomap = new("pci_iomap");

    /// <summary>Allocating the device list of <c>VFIO_DEVICE_GET_PCI_HOT_RESET_INFO</c>.</summary>
    public static readonly FaultSite HotResetInfoAlloc = new("hot_reset_info_alloc");

    /// <summary>Allocating the group list of <c>VFIO_DEVICE_PCI_HOT_RESET</c>.</summary>
    public static readonly FaultSite HotResetAlloc = new("hot_reset_alloc");

    /// <summary>Every site, in the order above.</summary>
    public static IReadOnlyList<FaultSite> All { get; } =
    [
        Alloc, VmAreaAlloc, SplitVma, Pin, IommuDomainAlloc, IommuAttachGroup, IommuMap, TceTableAlloc, TceSetWindow,
        DmaAlloc, LockAcct, BitmapAlloc, VpfnAlloc, Type1GroupAlloc, ContainerAlloc, DeviceFileAlloc, AnonInodeGetfile,
        MdevOpenDevice, PciEnableDevice, VfioConfigInit, PciIomap, HotResetInfoAlloc, HotResetAlloc,
    ];

    /// <summary>The site named <paramref name="name"/> (for data-driven tests); throws for a name no site has.</summary>
    public static FaultSite Named(string name)
    {
        foreach (FaultSite s in All)
        {
            if (s.Name == name)
            {
                return s;
            }
        }
        throw new ArgumentException($"no fault site is named '{name}'", nameof(name));
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}
