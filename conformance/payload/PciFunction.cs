using System.Globalization;

namespace VfioLab.Conformance.Payload;

/// <summary>A PCI function bound to vfio-pci, as sysfs describes it (<c>/sys/bus/pci/drivers/vfio-pci/ADDR</c>).</summary>
/// <param name="Address">Its PCI address, which is also its VFIO device name (<c>0000:00:10.0</c>).</param>
/// <param name="Vendor">PCI vendor id.</param>
/// <param name="DeviceId">PCI device id.</param>
/// <param name="Group">Its IOMMU group number (<c>/dev/vfio/N</c>).</param>
internal sealed record PciFunction(string Address, ushort Vendor, ushort DeviceId, int Group)
{
    private const string VfioPciDriver = "/sys/bus/pci/drivers/vfio-pci";

    /// <summary>Every function bound to vfio-pci, by address.</summary>
    public static IReadOnlyList<PciFunction> BoundToVfioPci()
    {
        if (!Directory.Exists(VfioPciDriver))
        {
            return [];
        }
        var found = new List<PciFunction>();
        foreach (string dir in Directory.EnumerateDirectories(VfioPciDriver).Order(StringComparer.Ordinal))
        {
            string address = Path.GetFileName(dir);
            string groupLink = Path.Combine(dir, "iommu_group");
            if (!address.Contains(':', StringComparison.Ordinal) || !File.Exists(Path.Combine(dir, "vendor")))
            {
                continue; // bind, unbind, new_id, ... are files of the driver, not functions
            }
            FileSystemInfo? target = new DirectoryInfo(groupLink).ResolveLinkTarget(returnFinalTarget: false);
            int group = target is null ? -1 : int.Parse(target.Name, NumberStyles.None, CultureInfo.InvariantCulture);
            found.Add(new PciFunction(address, ReadId(Path.Combine(dir, "vendor")), ReadId(Path.Combine(dir, "device")), group));
        }
        return found;
    }

    private static ushort ReadId(string path) =>
        ushort.Parse(File.ReadAllText(path).Trim().AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
