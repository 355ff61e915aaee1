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
}
