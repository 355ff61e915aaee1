namespace VfioLab.Lab;

/// <summary>
/// A host description the model cannot build (two devices at one PCI address, a page size that is not
/// a power of two, an unknown quirk), or an action asked of something that cannot do it (DMA from an
/// unplugged device, pins from a device bound to a host driver). What a VFIO user can get wrong through
/// system calls is never this exception: it comes back as an errno.
/// </summary>
public sealed class LabConfigurationException : Exception
{
    /// <summary>Creates the exception with its message.</summary>
    public LabConfigurationException(string message)
        : base(message)
    {
    }

    /// <summary>The device, process or part of the host the problem concerns, when one is known.</summary>
    public string? Subject { get; init; }

    /// <summary>Which setting of <see cref="Subject"/> is refused, spelled as the scenario format's key path under
    /// the device, process or <c>host</c> (<c>memory</c>, <c>frames</c>, <c>bars[1].size</c>, <c>group</c>,
    /// <c>reserved_regions[0]</c>), when one is; null when the subject as a whole is.</summary>
    public string? Setting { get; init; }
}
