using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

internal sealed partial class ScenarioSession
{
    private StepResult Dispatch(ScenarioStep step) => step.Kind switch
    {
        "mmap" => Mmap(step),
        "mmap_region" => MmapRegion(step),
        "munmap" => Munmap(step),
        "write" => WriteMemory(step),
        "read" => ReadMemory(step),
        "fork" => Fork(step),
        "exit" => Exit(step),
        "exec" => Exec(step),
        "hold_mmap_lock" => HoldMmapLock(step, hold: true),
        "release_mmap_lock" => HoldMmapLock(step, hold: false),
        "set_rlimit" => SetRlimit(step),
        "open" => Open(step),
        "close" => Close(step),
        "get_api_version" => ValueIoctl(step, Abi.VfioIoctl.GetApiVersion, 0),
        "check_extension" => ValueIoctl(step, Abi.VfioIoctl.CheckExtension, Extension(step, "extension")),
        "set_iommu" => ValueIoctl(step, Abi.VfioIoctl.SetIommu, Extension(step, "type")),
        "group_get_status" => GroupGetStatus(step),
        "group_set_container" => GroupSetContainer(step),
        "group_unset_container" => ValueIoctl(step, Abi.VfioIoctl.GroupUnsetContainer, 0),
        "get_device_fd" => GetDeviceFd(step),
        "device_get_info" => DeviceGetInfo(step),
        "device_get_region_info" => DeviceGetRegionInfo(step),
        "device_get_irq_info" => DeviceGetIrqInfo(step),
        "set_irqs" => SetIrqs(step),
        "device_feature" => DeviceFeature(step),
        "region_read" => RegionRead(step),
        "region_write" => RegionWrite(step),
        "eventfd" => EventFdCreate(step),
        "eventfd_read" => EventFdRead(step),
        "eventfd_write" => Syscall(ProcessOf(step).WriteEventFd(Fd(step), ValueOr(step, "value", 1))),
        "device_reset" => ValueIoctl(step, Abi.VfioIoctl.DeviceReset, 0),
        "pci_command" => PciCommand(step),
        "pci_hot_reset" => PciHotReset(step),
        "iommu_get_info" => IommuGetInfo(step),
        "map_dma" => MapDma(step),
        "unmap_dma" => UnmapDma(step),
        "dirty_pages" => DirtyPages(step),
        "spapr_tce_get_info" => SpaprTceGetInfo(step),
        "spapr_register_memory" => SpaprRegisterMemory(step, Abi.VfioIoctl.IommuSpaprRegisterMemory),
        "spapr_unregister_memory" => SpaprRegisterMemory(step, Abi.VfioIoctl.IommuSpaprUnregisterMemory),
        "spapr_tce_create" => SpaprTceCreate(step),
        "spapr_tce_remove" => SpaprTceRemove(step),
        "iommu_enable" => ValueIoctl(step, Abi.VfioIoctl.IommuEnable, 0),
        "iommu_disable" => ValueIoctl(step, Abi.VfioIoctl.IommuDisable, 0),
        "ioctl" => RawIoctl(step),
        "dma" => Dma(step),
        "pin_pages" => PinPages(step),
        "unpin_pages" => UnpinPages(step),
        "dma_rw" => DmaRw(step),
        "device_release" => DeviceRelease(step),
        "unplug" => Unplug(step),
        "device_interrupt" => DeviceInterrupt(step),
        "run_deferred_work" => RunDeferredWork(),
        "check" => Check(step),
        "expect_violation" => ExpectViolation(step),
        _ => throw new StepFailure(step.Location, NotModelled(step.Kind)),
    };

    /// <summary>Why a step kind cannot run in this version of the model.</summary>
    private static string NotModelled(string kind) => $"step '{kind}' is not supported by this version of VfioLab";
}
