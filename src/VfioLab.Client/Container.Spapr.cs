using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>The sPAPR TCE backend's calls (POWER): window info, v1 ENABLE/DISABLE, v2 memory pre-registration and
/// dynamic DMA windows. MAP_DMA/UNMAP_DMA use the type1 structs (<see cref="MapDma"/>, <see cref="UnmapDma"/>).</summary>
public sealed partial class Container
{
    /// <summary><c>VFIO_IOMMU_SPAPR_TCE_GET_INFO</c>, asking for the DDW part too.</summary>
    public SpaprInfo GetSpaprInfo()
    {
        byte[] arg = Struct(new VfioIommuSpaprTceInfo { Argsz = VfioIommuSpaprTceInfo.SizeOf });
        Syscall.Ioctl(Sys, Fd, VfioIoctl.IommuSpaprTceGetInfo, arg, () => $"spapr_tce_get_info fd {Fd}");
        VfioIommuSpaprTceInfo.TryRead(arg, out VfioIommuSpaprTceInfo info);
        return new SpaprInfo(info.Flags, info.Dma32WindowStart, info.Dma32WindowSize,
            info.Ddw.Pgsizes, info.Ddw.MaxDynamicWindowsSupported, info.Ddw.Levels);
    }

    /// <summary><c>VFIO_IOMMU_ENABLE</c> (sPAPR v1): charges the default window to locked memory.</summary>
    public void Enable() => Syscall.Ioctl(Sys, Fd, VfioIoctl.IommuEnable, 0, () => $"iommu_enable fd {Fd}");

    /// <summary><c>VFIO_IOMMU_DISABLE</c> (sPAPR v1).</summary>
    public void Disable() => Syscall.Ioctl(Sys, Fd, VfioIoctl.IommuDisable, 0, () => $"iommu_disable fd {Fd}");

    /// <summary><c>VFIO_IOMMU_SPAPR_REGISTER_MEMORY</c> (v2): pins and charges the memory once, for later maps.</summary>
    public void RegisterMemory(ulong vaddr, ulong size) => Prereg(VfioIoctl.IommuSpaprRegisterMemory, vaddr, size, "spapr_register_memory");

    /// <summary><c>VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY</c> (v2).</summary>
    public void UnregisterMemory(ulong vaddr, ulong size) => Prereg(VfioIoctl.IommuSpaprUnregisterMemory, vaddr, size, "spapr_unregister_memory");

    /// <summary><c>VFIO_IOMMU_SPAPR_TCE_CREATE</c> (v2): a dynamic DMA window. Returns its start address.</summary>
    public ulong CreateWindow(uint pageShift, ulong windowSize, uint levels = 1)
    {
        byte[] arg = Struct(new VfioIommuSpaprTceCreate
        {
            Argsz = VfioIommuSpaprTceCreate.SizeOf,
            PageShift = pageShift,
            WindowSize = windowSize,
            Levels = levels,
        });
        Syscall.Ioctl(Sys, Fd, VfioIoctl.IommuSpaprTceCreate, arg,
            () => $"spapr_tce_create fd {Fd} page_shift {pageShift} window_size 0x{windowSize:x} levels {levels}");
        return ReadU64(arg, VfioIommuSpaprTceCreate.Offsets.StartAddr);
    }

    /// <summary><c>VFIO_IOMMU_SPAPR_TCE_REMOVE</c> (v2): removes the window starting at <paramref name="start"/>.</summary>
    public void RemoveWindow(ulong start)
    {
        byte[] arg = Struct(new VfioIommuSpaprTceRemove { Argsz = VfioIommuSpaprTceRemove.SizeOf, StartAddr = start });
        Syscall.Ioctl(Sys, Fd, VfioIoctl.IommuSpaprTceRemove, arg, () => $"spapr_tce_remove fd {Fd} start 0x{start:x}");
    }

    private void Prereg(uint request, ulong vaddr, ulong size, string what)
    {
        byte[] arg = Struct(new VfioIommuSpaprRegisterMemory { Argsz = VfioIommuSpaprRegisterMemory.SizeOf, Vaddr = vaddr, Size = size });
        Syscall.IoctlZero(Sys, Fd, request, arg, () => $"{what} fd {Fd} vaddr 0x{vaddr:x} size 0x{size:x}");
    }
}
