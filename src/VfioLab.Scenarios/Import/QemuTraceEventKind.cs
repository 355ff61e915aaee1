namespace VfioLab.Scenarios.Import;

/// <summary>What a line of a QEMU vfio trace says the VMM did.</summary>
public enum QemuTraceEventKind
{
    /// <summary>A DMA map: the listener's <c>region_add [ram]</c>, an iommufd <c>IOAS_MAP</c>, or an error report
    /// of a <c>vfio_dma_map</c> that no traced add preceded.</summary>
    Map,

    /// <summary>A DMA unmap: the listener's <c>region_del</c>, an iommufd <c>IOAS_UNMAP</c>, or an error report of a
    /// <c>vfio_dma_unmap</c> that no traced del preceded.</summary>
    Unmap,

    /// <summary>A section the listener skipped (<c>SKIPPING region_add</c>/<c>region_del</c>): nothing mapped.</summary>
    Skip,

    /// <summary>A device attached to its group (<c>vfio_attach_device</c>): where the replay takes its device name
    /// and group number from.</summary>
    AttachDevice,
}
