using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;

namespace VfioLab.Tests.Scenarios.Parsing;

/// <summary>Sample scenario texts and helpers shared by the parsing tests.</summary>
internal static class ScenarioSamples
{
    public const string File = "sample.yaml";

    /// <summary>A valid scenario using every step kind of SCENARIOS.md.</summary>
    public const string Full = """
        vfiolab: 1
        name: every-step
        description: one of each step kind
        host:
          memory: 64GiB
          page_size: 4KiB
          iommu: vt-d
          iommu_page_sizes: [4KiB, 2MiB, 1GiB]
          aperture: { start: 0, last: 0x7fffffffff }
          reserved_regions:
            - { start: 0xfee00000, last: 0xfeefffff, type: msi }
          kernel: seeds
          quirks: [async-lock-accounting, unmap-owner-check]
          params: { dma_entry_limit: 65535, disable_hugepages: false, allow_unsafe_interrupts: off, strict_mmio_maps: on }
          frames: { layout: scattered, run_pages: 16, seed: 7 }
        devices:
          - name: gpu
            address: "0000:01:00.0"
            driver: vfio-pci
            group: 1
            bars: [ { index: 0, size: 16MiB, is64bit: false }, { index: 1, size: 128GiB, prefetchable: true } ]
            isolated_msi: true
            iommu: smmu-v3
            iommu_page_sizes: [4KiB, 2MiB]
            coherent: false
          - name: vgpu
            address: 6b3a8c2e-1d4f-4a5b-9c7d-0e1f2a3b4c5d
            driver: mdev
            misbehaving: true
        processes:
          - { name: qemu, memlock: 64GiB, cap_ipc_lock: false }
          - { name: helper, memlock: unlimited }
        steps:
          - mmap: { size: 2GiB, backing: hugetlb-2m, prot: rw, populate: true, as: ram }
          - mmap: { size: 4KiB, backing: pfnmap, refcounted: true, at: 0x7f0000000000 }
          - write: { vaddr: ram, data: "de ad be ef" }
          - write: { vaddr: ram+0x1000, fill: 0xab, size: 4KiB }
          - read: { vaddr: ram, size: 4, expect: { data: "deadbeef" } }
          - open: { path: /dev/vfio/vfio, as: container }
          - get_api_version: { fd: container, expect: { result: 0 } }
          - check_extension: { fd: container, extension: VFIO_TYPE1v2_IOMMU, expect: { result: 1 } }
          - open: { path: /dev/vfio/1, as: group }
          - group_get_status: { fd: group, expect: { viable: true, container_set: false } }
          - group_set_container: { fd: group, container: container }
          - set_iommu: { fd: container, type: VFIO_TYPE1v2_IOMMU }
          - iommu_get_info: { fd: container, argsz: 16, buffer: 64 }
          - get_device_fd: { fd: group, name: "0000:01:00.0", as: dev }
          - mmap_region: { device_fd: dev, index: 0, offset: 0, size: 16MiB, as: bar0 }
          - map_dma: { fd: container, iova: 0, vaddr: ram, size: 2GiB, flags: [READ, WRITE] }
          - map_dma: { fd: container, iova: 0x100000000, vaddr: bar0, size: 16MiB, expect: EEXIST }
          - dirty_pages: { fd: container, op: start }
          - dirty_pages: { fd: container, op: get_bitmap, iova: 0, size: 2GiB, bitmap: { pgsize: 4KiB, vaddr: ram-0x0, size: 64KiB } }
          - unmap_dma: { fd: container, iova: 0, size: 1GiB, flags: [GET_DIRTY_BITMAP], bitmap: { pgsize: 4KiB, vaddr: ram+1GiB, size: 32KiB }, expect: { size: 1GiB } }
          - device_get_info: { fd: dev }
          - device_get_region_info: { fd: dev, index: 1, expect: { size: 128GiB } }
          - device_get_irq_info: { fd: dev, index: 1, expect: { count: 1 } }
          - eventfd: { as: efd }
          - set_irqs: { fd: dev, index: 1, flags: [DATA_EVENTFD, ACTION_TRIGGER], eventfds: [efd] }
          - eventfd_read: { fd: efd, expect: EAGAIN }
          - eventfd_write: { fd: efd, value: 2 }
          - device_feature: { fd: dev, feature: 3, flags: [PROBE, SET] }
          - region_read: { fd: dev, index: 7, offset: 0, size: 4 }
          - region_write: { fd: dev, index: 7, offset: 0x3c, data: "0b" }
          - device_reset: { fd: dev }
          - pci_hot_reset: { fd: dev, groups: [group] }
          - pci_command: { fd: dev, memory: false }
          - ioctl: { fd: container, request: VFIO_IOMMU_MAP_DMA, arg: "20 00 00 00", buffer: 32, expect: EINVAL }
          - ioctl: { fd: container, request: 0x3b71, value: 1 }
          - dma: { device: gpu, op: write, iova: 0x1000, size: 4, data: "01 02 03 04" }
          - dma: { device: gpu, op: read, iova: 0xdead0000, size: 4, expect: fault }
          - pin_pages: { device: vgpu, iova: 0, count: 1, prot: rw }
          - unpin_pages: { device: vgpu, iova: 0, count: 1 }
          - dma_rw: { device: vgpu, iova: 0, op: read, size: 16 }
          - munmap: { vaddr: bar0, size: 16MiB }
          - fork: { as: child }
          - set_rlimit: { memlock: unlimited, process: child }
          - hold_mmap_lock: { process: child }
          - release_mmap_lock: { process: child }
          - exec: { process: child }
          - exit: { process: child }
          - check: { locked_vm: { process: qemu, bytes: 2GiB } }
          - check: { pinned_pages: 524288 }
          - check: { mappings: { fd: container, count: 1 } }
          - check: { dma_avail: { fd: container, count: 65534 } }
          - check: { iommu_entries: { device: gpu, count: 1 } }
          - check: { translate: { device: gpu, iova: 0x1000, expect: { phys: 0x100001000 } } }
          - check: { translate: { device: gpu, iova: 0x80000000, expect: fault } }
          - check: { invariants: clean }
          - device_release: { device: gpu }
          - read: { vaddr: 0x7f0000000000, size: 4, expect: SIGBUS }
          - expect_violation: { invariant: no-cpu-mapping-of-disabled-bar }
          - device_interrupt: { device: gpu, index: msi }
          - unplug: { device: gpu }
          - run_deferred_work: {}
          - close: { fd: dev }
          - group_unset_container: { fd: group }
          - open: { path: /dev/vfio/vfio, as: spapr }
          - spapr_tce_get_info: { fd: spapr }
          - spapr_register_memory: { fd: spapr, vaddr: ram, size: 1GiB }
          - spapr_tce_create: { fd: spapr, page_shift: 16, window_size: 1TiB, levels: 2, as: window }
          - spapr_tce_remove: { fd: spapr, start: window }
          - spapr_unregister_memory: { fd: spapr, vaddr: ram, size: 1GiB }
          - iommu_enable: { fd: spapr }
          - iommu_disable: { fd: spapr }
          - exit:
        """;

    public static ScenarioDocument Parse(string text) => ScenarioParser.Parse(text, File);

    /// <summary>A minimal valid scenario with the given steps (each line indented by two spaces under <c>steps:</c>).</summary>
    public static string WithSteps(params string[] steps) =>
        "vfiolab: 1\nname: t\ndevices:\n  - { name: gpu, address: \"0000:01:00.0\" }\nprocesses:\n  - { name: qemu }\nsteps:\n"
        + string.Concat(steps.Select(s => "  " + s + "\n"));

    /// <summary>The line in <see cref="WithSteps"/> text of the first step.</summary>
    public const int FirstStepLine = 8;

    public static ScenarioParseException Error(string text) => Assert.Throws<ScenarioParseException>(() => Parse(text));
}
