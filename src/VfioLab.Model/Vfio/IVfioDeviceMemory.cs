using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Vfio;

/// <summary>
/// A device driver whose mmaps map device memory, with the operation the 2021 device-memory design
/// asked for (seed 003, Jason Gunthorpe's review of RFC 05/10 and v1's vma-to-pfn callback): turn a VMA
/// of the device into the pfn range it maps, from the device's own state, without walking a page table.
/// </summary>
internal interface IVfioDeviceMemory
{
    /// <summary>The pfn the VMA maps at its first page, or false when the VMA maps no device memory.
    /// The VMA maps consecutive pfns from there to its end.</summary>
    bool TryVmaToPfn(VfioDevice device, Vma vma, out Pfn first);
}
