using VfioLab.Scenarios;

namespace VfioLab.Tests.Scenarios.Refusals;

/// <summary>The errno paths of the type1 specification (spec/type1.md §1.2-§1.8, §3.9: container, group, GET_INFO, MAP
/// step by step, UNMAP, DIRTY_PAGES, external pins), of the sPAPR backend (docs/spapr.md) and of the vfio-pci device
/// face, one case each: the last step of the case is refused with the errno the kernel gives, and its reason names the
/// kernel function that refused and the values involved.</summary>
public sealed class SpecErrnoPathTests
{
    private const string Type1Host = """
        vfiolab: 1
        host: { memory: 1GiB, iommu: vt-d, params: { dma_entry_limit: 2 } }
        devices:
          - { name: nic, address: "0000:02:00.0", group: 2, bars: [ { index: 0, size: 64KiB } ] }
          - { name: pf, address: "0000:03:00.0", driver: host, group: 3 }
          - { name: vf, address: "0000:03:00.1", group: 3 }
          - { name: vgpu, address: "8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11", driver: mdev, group: 20 }
        processes:
          - { name: vmm, memlock: 1MiB }
        steps:
        """;

    private const string Type1Ready = """
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/2, as: g }
          - group_set_container: { fd: g, container: c }
          - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
          - mmap: { size: 4MiB, as: ram }
        """ + "\n";

    /// <summary>name, steps after the host, expected check, and text the reason must contain.</summary>
    public static TheoryData<string, string, string, string> Type1Paths() => new()
    {
        // §1.2 container
        { "set_iommu without a group", "- open: { path: /dev/vfio/vfio, as: c }\n- set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU, expect: EINVAL }",
            "vfio_ioctl_set_iommu", "has no group yet" },
        { "set_iommu of an unknown type", "- open: { path: /dev/vfio/vfio, as: c }\n- open: { path: /dev/vfio/2, as: g }\n- group_set_container: { fd: g, container: c }\n- set_iommu: { fd: c, type: VFIO_SPAPR_TCE_IOMMU, expect: ENODEV }",
            "vfio_ioctl_set_iommu", "claims type 2" },
        { "backend ioctl before set_iommu", "- open: { path: /dev/vfio/vfio, as: c }\n- map_dma: { fd: c, iova: 0, vaddr: 0x10000, size: 4KiB, expect: EINVAL }",
            "vfio_fops_unl_ioctl", "has no IOMMU driver yet" },
        // §1.3 group
        { "group not viable", "- open: { path: /dev/vfio/vfio, as: c }\n- open: { path: /dev/vfio/3, as: g3 }\n- group_set_container: { fd: g3, container: c, expect: EPERM }",
            "iommu_group_claim_dma_owner", "0000:03:00.0 is bound to a kernel driver" },
        { "group in a container already", Type1Ready + "- group_set_container: { fd: g, container: c, expect: EINVAL }",
            "vfio_group_ioctl_set_container", "group 2 is already in container" },
        { "group opened twice", "- open: { path: /dev/vfio/2 }\n- open: { path: /dev/vfio/2, expect: EBUSY }", "vfio_group_fops_open", "already open" },
        { "device fd of an unknown name", Type1Ready + "- get_device_fd: { fd: g, name: \"0000:09:00.0\", expect: ENODEV }",
            "vfio_device_get_from_name", "no device named '0000:09:00.0'" },
        { "unset with a device open", Type1Ready + "- get_device_fd: { fd: g, name: \"0000:02:00.0\" }\n- group_unset_container: { fd: g, expect: EBUSY }",
            "vfio_group_ioctl_unset_container", "still has 1 device file(s) open" },
        { "bad fd", "- get_api_version: { fd: 77, expect: EBADF }", "fdget", "fd 77 is not open" },
        // §1.4 GET_INFO
        { "get_info argsz below 16", Type1Ready + "- iommu_get_info: { fd: c, argsz: 8, expect: EINVAL }", "vfio_iommu_type1_get_info", "argsz 8 is below minsz 16" },
        // §1.5 MAP_DMA, in the kernel's order
        { "map argsz below 32", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 2MiB, argsz: 16, expect: EINVAL }",
            "vfio_iommu_type1_map_dma", "argsz 16 is below minsz 32" },
        { "map unknown flag", Type1Ready + "- ioctl: { fd: c, request: VFIO_IOMMU_MAP_DMA, arg: \"20 00 00 00 08 00 00 00\", buffer: 32, expect: EINVAL }",
            "vfio_iommu_type1_map_dma", "flags 0x8 has bits outside READ|WRITE|VADDR" },
        { "map size 0", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 0, expect: EINVAL }", "vfio_dma_do_map", "size is 0" },
        { "map range wraps", Type1Ready + "- map_dma: { fd: c, iova: 0xfffffffffffff000, vaddr: ram, size: 0x2000, expect: EOVERFLOW }",
            "vfio_dma_do_map", "iova 0xfffffffffffff000 or vaddr" },
        { "map with neither READ nor WRITE", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 2MiB, flags: [], expect: EINVAL }",
            "vfio_dma_do_map", "a mapping needs READ or WRITE" },
        { "map misaligned", Type1Ready + "- map_dma: { fd: c, iova: 0x1800, vaddr: ram, size: 0x1000, expect: EINVAL }",
            "vfio_dma_do_map", "iova 0x1800, vaddr" },
        { "map overlapping", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 0x1000 }\n- map_dma: { fd: c, iova: 0x100000, vaddr: ram+0x1000, size: 0x1000, expect: EEXIST }",
            "vfio_dma_do_map", "[0x100000, 0x100fff] overlaps the mapping [0x100000, 0x100fff]" },
        { "map past dma_entry_limit", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 0x1000 }\n- map_dma: { fd: c, iova: 0x200000, vaddr: ram, size: 0x1000 }\n- map_dma: { fd: c, iova: 0x300000, vaddr: ram, size: 0x1000, expect: ENOSPC }",
            "vfio_dma_do_map", "dma_avail is 0 of dma_entry_limit 2" },
        { "map across the MSI window", Type1Ready + "- map_dma: { fd: c, iova: 0xfee00000, vaddr: ram, size: 2MiB, expect: EINVAL }",
            "vfio_iommu_iova_dma_valid", "[0xfee00000, 0xfeffffff] overlaps the msi reserved region [0xfee00000, 0xfeefffff] of group 2" },
        { "map past RLIMIT_MEMLOCK", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 2MiB, expect: ENOMEM }",
            "vfio_pin_pages_remote", "charging 512 pages would make locked_vm 512 pages, over RLIMIT_MEMLOCK 256 pages" },
        { "map of unmapped memory", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: 0x10000, size: 4KiB, expect: EFAULT }",
            "pin_user_pages_remote", "no VMA maps vaddr 0x10000" },
        { "map VADDR of nothing", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 4KiB, flags: [VADDR], expect: ENOENT }",
            "vfio_dma_do_map", "VADDR update: no mapping overlaps [0x100000, 0x100fff]" },
        { "map VADDR of a valid mapping", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 4KiB }\n- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 4KiB, flags: [VADDR], expect: EINVAL }",
            "vfio_dma_do_map", "still has a valid vaddr" },
        // §1.6 UNMAP_DMA
        { "unmap argsz below 24", Type1Ready + "- unmap_dma: { fd: c, iova: 0, size: 4KiB, argsz: 8, expect: EINVAL }", "vfio_iommu_type1_unmap_dma", "argsz 8 is below minsz 24" },
        { "unmap misaligned", Type1Ready + "- unmap_dma: { fd: c, iova: 0x1800, size: 4KiB, expect: EINVAL }", "vfio_dma_do_unmap", "iova 0x1800 is not a multiple" },
        { "unmap ALL with a range", Type1Ready + "- unmap_dma: { fd: c, iova: 0x1000, size: 4KiB, flags: [ALL], expect: EINVAL }", "vfio_dma_do_unmap", "ALL takes iova 0 and size 0" },
        { "unmap size 0", Type1Ready + "- unmap_dma: { fd: c, iova: 0x1000, size: 0, expect: EINVAL }", "vfio_dma_do_unmap", "size is 0" },
        { "unmap wraps", Type1Ready + "- unmap_dma: { fd: c, iova: 0xfffffffffffff000, size: 0x2000, expect: EOVERFLOW }", "vfio_dma_do_unmap", "wraps past 2^64" },
        { "unmap bisecting (v2)", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 0x2000 }\n- unmap_dma: { fd: c, iova: 0x100000, size: 0x1000, expect: EINVAL }",
            "vfio_dma_do_unmap", "[0x100000, 0x100fff] cuts the mapping [0x100000, 0x101fff]" },
        { "unmap VADDR twice", Type1Ready + "- map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 0x1000 }\n- unmap_dma: { fd: c, iova: 0x100000, size: 0x1000, flags: [VADDR] }\n- unmap_dma: { fd: c, iova: 0x100000, size: 0x1000, flags: [VADDR], expect: EINVAL }",
            "vfio_dma_do_unmap", "already invalidated" },
        // §1.7 DIRTY_PAGES
        { "dirty pages on v1", "- open: { path: /dev/vfio/vfio, as: c }\n- open: { path: /dev/vfio/2, as: g }\n- group_set_container: { fd: g, container: c }\n- set_iommu: { fd: c, type: VFIO_TYPE1_IOMMU }\n- dirty_pages: { fd: c, op: start, expect: EACCES }",
            "vfio_iommu_type1_dirty_pages", "this one is v1" },
        { "dirty bitmap without tracking", Type1Ready + "- dirty_pages: { fd: c, op: get_bitmap, iova: 0x100000, size: 4KiB, bitmap: { pgsize: 4KiB, vaddr: ram, size: 8 }, expect: EINVAL }",
            "vfio_iommu_type1_dirty_pages", "not started" },
        // §1.8 external pins and dma_rw, §3.9 attach
        { "pin of more than 512 pages", Type1Ready + "- open: { path: /dev/vfio/20, as: m }\n- group_set_container: { fd: m, container: c }\n- get_device_fd: { fd: m, name: \"8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11\" }\n- pin_pages: { device: vgpu, iova: 0, count: 513, expect: E2BIG }",
            "vfio_pin_pages", "npage 513 is over VFIO_PIN_PAGES_MAX_ENTRIES 512" },
        { "pin outside every mapping", Type1Ready + "- open: { path: /dev/vfio/20, as: m }\n- group_set_container: { fd: m, container: c }\n- get_device_fd: { fd: m, name: \"8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11\" }\n- pin_pages: { device: vgpu, iova: 0x100000, count: 1, expect: EINVAL }",
            "vfio_iommu_type1_pin_pages", "no mapping holds iova 0x100000" },
        { "dma_rw outside every mapping", Type1Ready + "- open: { path: /dev/vfio/20, as: m }\n- group_set_container: { fd: m, container: c }\n- get_device_fd: { fd: m, name: \"8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11\" }\n- dma_rw: { device: vgpu, iova: 0x100000, op: read, size: 8, expect: EINVAL }",
            "vfio_iommu_type1_dma_rw_chunk", "no mapping holds iova 0x100000" },
        // vfio-pci's device face
        { "region info of a missing region", Type1Ready + "- get_device_fd: { fd: g, name: \"0000:02:00.0\", as: d }\n- device_get_region_info: { fd: d, index: 9, expect: EINVAL }",
            "vfio_pci_ioctl_get_region_info", "region index 9" },
        { "irq info of a missing index", Type1Ready + "- get_device_fd: { fd: g, name: \"0000:02:00.0\", as: d }\n- device_get_irq_info: { fd: d, index: 7, expect: EINVAL }",
            "vfio_pci_ioctl_get_irq_info", "irq index 7" },
    };

    [Theory]
    [MemberData(nameof(Type1Paths))]
    public void Run_SpecErrnoPath_RefusalNamesItsCheckAndValues(string name, string steps, string check, string reasonContains)
    {
        string yaml = Type1Host + "\n" + Indent(steps);
        ScenarioOutcome outcome = ScenarioRunner.Prepare(ScenarioDocument.Parse(yaml, name + ".yaml")).Execute();

        Assert.True(outcome.Passed, string.Join('\n', outcome.Steps.SelectMany(s => s.Problems)));
        StepReport last = outcome.Steps[^1];
        Assert.NotNull(last.Errno);
        Assert.NotNull(last.Refusal);
        Assert.Equal(last.Errno, last.Refusal.Errno.ToString());
        Assert.Equal(check, last.Refusal.Check);
        Assert.Contains(reasonContains, last.Refusal.Reason, StringComparison.Ordinal);
    }

    private const string SpaprHost = """
        vfiolab: 1
        host: { memory: 1GiB, page_size: 64KiB, iommu: spapr-tce }
        devices:
          - { name: nic, address: "0000:02:00.0", group: 2, bars: [ { index: 0, size: 64KiB } ] }
        processes:
          - { name: qemu, memlock: 4GiB }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/2, as: g }
          - group_set_container: { fd: g, container: c }
        """;

    public static TheoryData<string, string, string, string> SpaprPaths() => new()
    {
        { "v1 map before enable", "- set_iommu: { fd: c, type: VFIO_SPAPR_TCE_IOMMU }\n- mmap: { size: 64KiB, as: buf }\n- map_dma: { fd: c, iova: 0, vaddr: buf, size: 64KiB, expect: EPERM }",
            "tce_iommu_ioctl", "not enabled yet (VFIO_IOMMU_ENABLE)" },
        { "v1 enable twice", "- set_iommu: { fd: c, type: VFIO_SPAPR_TCE_IOMMU }\n- iommu_enable: { fd: c }\n- iommu_enable: { fd: c, expect: EBUSY }",
            "tce_iommu_enable", "already enabled" },
        { "v2 register misaligned", "- set_iommu: { fd: c, type: VFIO_SPAPR_TCE_v2_IOMMU }\n- mmap: { size: 128KiB, as: buf }\n- spapr_register_memory: { fd: c, vaddr: buf+0x1000, size: 64KiB, expect: EINVAL }",
            "tce_iommu_register_pages", "multiples of PAGE_SIZE 0x10000" },
        { "v2 remove of no window", "- set_iommu: { fd: c, type: VFIO_SPAPR_TCE_v2_IOMMU }\n- mmap: { size: 64KiB, as: buf }\n- spapr_register_memory: { fd: c, vaddr: buf, size: 64KiB }\n- spapr_tce_remove: { fd: c, start: 0x800000000000000, expect: EINVAL }",
            "tce_iommu_remove_window", "no DMA window holds address 0x800000000000000" },
    };

    [Theory]
    [MemberData(nameof(SpaprPaths))]
    public void Run_SpaprErrnoPath_RefusalNamesItsCheckAndValues(string name, string steps, string check, string reasonContains)
    {
        ScenarioOutcome outcome = ScenarioRunner.Prepare(ScenarioDocument.Parse(SpaprHost + "\n" + Indent(steps), name + ".yaml")).Execute();

        Assert.True(outcome.Passed, string.Join('\n', outcome.Steps.SelectMany(s => s.Problems)));
        StepReport last = outcome.Steps[^1];
        Assert.NotNull(last.Refusal);
        Assert.Equal(last.Errno, last.Refusal.Errno.ToString());
        Assert.Equal(check, last.Refusal.Check);
        Assert.Contains(reasonContains, last.Refusal.Reason, StringComparison.Ordinal);
    }

    private static string Indent(string steps) =>
        string.Join('\n', steps.Split('\n').Select(l => l.TrimStart().Length == 0 ? l : "  " + l.TrimStart())) + "\n";
}
