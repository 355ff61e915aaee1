using VfioLab.Abi;
using VfioLab.Client;

namespace VfioLab.Examples.Tests;

/// <summary>
/// A VMM's VFIO memory listener, cut down from QEMU's (<c>hw/vfio/listener.c</c>, <c>vfio_listener_region_add</c>
/// and <c>_del</c>): every RAM section of the guest is DMA-mapped at its guest-physical address so a passthrough
/// device can reach guest memory; ROM is mapped read-only. It is the code under test in
/// <see cref="GuestMemoryLayoutTests"/>: written against <see cref="Container"/>, it would run unchanged on a real
/// host through <c>VfioLab.Linux</c>.
/// </summary>
/// <remarks>Unlike QEMU it does not pre-filter sections against the IOMMU's usable IOVA ranges: the kernel is the
/// judge, and a section it refuses surfaces as the <see cref="VfioException"/> of MAP_DMA.</remarks>
internal sealed class VfioMemoryListener(Container container)
{
    private readonly List<GuestRamSection> _mapped = [];

    /// <summary>The sections mapped and not yet removed, in the order they were added.</summary>
    public IReadOnlyList<GuestRamSection> Mapped => _mapped;

    /// <summary><c>region_add</c>: maps <paramref name="section"/>.</summary>
    /// <exception cref="VfioException">MAP_DMA refused it (EINVAL outside the usable IOVA ranges, EEXIST, ENOMEM ...).</exception>
    public void RegionAdd(GuestRamSection section)
    {
        DmaMapFlags flags = section.ReadOnly ? DmaMapFlags.Read : DmaMapFlags.Read | DmaMapFlags.Write;
        container.MapDma(section.GuestPhys, section.HostVirt, section.Size, flags);
        _mapped.Add(section);
    }

    /// <summary><c>region_del</c>: unmaps <paramref name="section"/>, which must be one this listener added (type1v2
    /// refuses to split a mapping). Returns the bytes the kernel unmapped.</summary>
    public ulong RegionDel(GuestRamSection section)
    {
        ulong unmapped = container.UnmapDma(section.GuestPhys, section.Size);
        _mapped.Remove(section);
        return unmapped;
    }
}
