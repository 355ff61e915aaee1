using VfioLab.Lab;

namespace VfioLab.Serve;

/// <summary>The directory the preload rewrites VFIO and sysfs paths into (docs/serve-protocol.md, "Paths are served
/// from a tree the server writes").</summary>
internal static class PathTree
{
    public static void Write(string root, LabHost host)
    {
        // Rewritten whole when the host changes; regions/ (files clients have mapped) is left alone.
        foreach (string part in new[] { "dev", "sys" })
        {
            if (Directory.Exists(Path.Combine(root, part)))
            {
                Directory.Delete(Path.Combine(root, part), recursive: true);
            }
        }
        string vfio = Path.Combine(root, "dev", "vfio");
        Directory.CreateDirectory(vfio);
        File.WriteAllBytes(Path.Combine(vfio, "vfio"), []);
        string groups = Path.Combine(root, "sys", "kernel", "iommu_groups");
        string pciDevices = Path.Combine(root, "sys", "devices", "pci0000:00");
        string busDevices = Path.Combine(root, "sys", "bus", "pci", "devices");
        Directory.CreateDirectory(groups);
        Directory.CreateDirectory(pciDevices);
        Directory.CreateDirectory(busDevices);
        Directory.CreateDirectory(Path.Combine(root, "sys", "bus", "pci", "drivers", "vfio-pci"));
        foreach (LabDevice d in host.Devices)
        {
            if (!d.IsPresent)
            {
                continue;
            }
            string group = d.IommuGroup.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (d.IsVfioBound)
            {
                File.WriteAllBytes(Path.Combine(vfio, group), []);
            }
            string groupDir = Path.Combine(groups, group);
            Directory.CreateDirectory(Path.Combine(groupDir, "devices"));
            File.WriteAllText(Path.Combine(groupDir, "type"), "DMA\n");
            // The model's public API does not list a group's reserved regions (IOMMU_GET_INFO's IOVA ranges carry
            // them): the file exists and is empty (docs/serve.md).
            File.WriteAllText(Path.Combine(groupDir, "reserved_regions"), "");
            if (d.IsMediated)
            {
                continue;
            }
            Symlink(Path.Combine(groupDir, "devices", d.Address), $"../../../../devices/pci0000:00/{d.Address}");
            string dev = Path.Combine(pciDevices, d.Address);
            Directory.CreateDirectory(dev);
            Symlink(Path.Combine(dev, "iommu_group"), $"../../../kernel/iommu_groups/{group}");
            Symlink(Path.Combine(dev, "subsystem"), "../../../bus/pci");
            if (d.IsVfioBound)
            {
                Symlink(Path.Combine(dev, "driver"), "../../../bus/pci/drivers/vfio-pci");
            }
            Symlink(Path.Combine(busDevices, d.Address), $"../../../devices/pci0000:00/{d.Address}");
        }
    }

    private static void Symlink(string path, string target)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            File.CreateSymbolicLink(path, target);
        }
    }
}
