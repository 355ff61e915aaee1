using VfioLab.Abi;

namespace VfioLab.Host;

/// <summary>What a device node's open does: the driver's file operations, or an errno (ENODEV, EBUSY, EPERM...).</summary>
internal readonly record struct DeviceOpenResult(IFileOperations? Operations, Errno Error)
{
    /// <summary>A successful open.</summary>
    public static DeviceOpenResult Ok(IFileOperations operations) => new(operations, Errno.None);

    /// <summary>A failed open.</summary>
    public static DeviceOpenResult Fail(Errno error) => new(null, error);
}
