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
            File.WriteAllText(Path.Combine(groupDir, "reserved_regions"), ReservedRegions(d.ReservedRegions));
            if (d.IsMediated)
            {
                continue;
            }
            Symlink(Path.Combine(groupDir, "devices", d.Address), $"../../../../devices/pci0000:00/{d.Address}");
            string dev = Path.Combine(pciDevices, d.Address);
            Directory.CreateDirectory(dev);
            // The ids as Linux's PCI sysfs attributes print them: 16-bit ids in four hex digits, the class in six.
            File.WriteAllText(Path.Combine(dev, "vendor"), Hex(d.VendorId!.Value, 4));
            File.WriteAllText(Path.Combine(dev, "device"), Hex(d.DeviceId!.Value, 4));
            File.WriteAllText(Path.Combine(dev, "class"), Hex(d.ClassCode!.Value, 6));
            Symlink(Path.Combine(dev, "iommu_group"), $"../../../kernel/iommu_groups/{group}");
            Symlink(Path.Combine(dev, "subsystem"), "../../../bus/pci");
            if (d.IsVfioBound)
            {
                Symlink(Path.Combine(dev, "driver"), "../../../bus/pci/drivers/vfio-pci");
            }
            Symlink(Path.Combine(busDevices, d.Address), $"../../../devices/pci0000:00/{d.Address}");
        }
    }

    /// <summary>A group's <c>reserved_regions</c> as Linux prints it: one line per region, its first and last IOVA in
    /// 16 hex digits and its type; a software MSI window is listed as <c>msi</c>, as the kernel names both.</summary>
    internal static string ReservedRegions(IReadOnlyList<LabReservedRegion> regions)
    {
        var text = new System.Text.StringBuilder();
        foreach (LabReservedRegion r in regions)
        {
            string type = r.Kind switch
            {
                ReservedRegionKind.Direct => "direct",
                ReservedRegionKind.DirectRelaxable => "direct-relaxable",
                ReservedRegionKind.Msi or ReservedRegionKind.SwMsi => "msi",
                _ => "reserved",
            };
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"0x{r.Start:x16} 0x{r.Last:x16} {type}\n");
        }
        return text.ToString();
    }

    private static string Hex(uint value, int digits) =>
        "0x" + value.ToString("x" + digits.ToString(System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture) + "\n";

    private static void Symlink(string path, string target)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            File.CreateSymbolicLink(path, target);
        }
    }
}
