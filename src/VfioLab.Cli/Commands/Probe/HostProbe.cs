using VfioLab.Abi;
using VfioLab.Client;

namespace VfioLab.Cli.Commands.Probe;

/// <summary>
/// Reports what a VFIO user would find on a host, using only the typed client: API version, extensions, each group's
/// viability, the IOMMU the first viable group gets (page sizes, usable IOVA ranges, DMA slots, dirty tracking) and
/// each device's regions. Every group joins one container and leaves it again; nothing is mapped.
/// </summary>
internal sealed class HostProbe(TextWriter output)
{
    /// <summary>Probes <paramref name="target"/>; returns false (after saying why) when there is no usable VFIO.</summary>
    public bool Probe(ProbeTarget target)
    {
        output.WriteLine(target.Description);
        Container container;
        try
        {
            container = Container.Open(target.Sys);
        }
        catch (VfioException e)
        {
            output.WriteLine($"  no VFIO: {e.Message}");
            if (e.Errno == Errno.ENOENT)
            {
                output.WriteLine("  (the vfio module is not loaded, or /dev/vfio is not visible here: modprobe vfio-pci)");
            }
            return false;
        }
        using (container)
        {
            output.WriteLine($"  container /dev/vfio/vfio: API version {Container.ApiVersion}");
            string supported = string.Join(' ', VfioExtension.All.Where(x => container.CheckExtension((uint)x.Value)).Select(x => x.CName));
            output.WriteLine($"  extensions: {(supported.Length == 0 ? "none" : supported)}");
            if (target.Groups.Count == 0)
            {
                output.WriteLine("  groups: none (no device is bound to a VFIO driver)");
                return true;
            }
            foreach (int number in target.Groups)
            {
                ProbeGroup(target, number);
            }
        }
        return true;
    }

    /// <summary>One group in a container of its own (the container loses its IOMMU when its last group leaves,
    /// so groups are not probed through one shared container).</summary>
    private void ProbeGroup(ProbeTarget target, int number)
    {
        Group group;
        try
        {
            group = Group.Open(target.Sys, number);
        }
        catch (VfioException e)
        {
            output.WriteLine($"  group {number}: {e.Message}");
            return;
        }
        using (group)
        {
            (bool viable, bool containerSet) = group.GetStatus();
            output.WriteLine($"  group {number}: {(viable ? "viable" : "not viable (a device is bound to a host driver)")}{(containerSet ? ", already in a container" : string.Empty)}");
            if (!viable || containerSet)
            {
                return;
            }
            try
            {
                using Container container = Container.Open(target.Sys);
                group.SetContainer(container);
                container.SelectIommu();
                PrintIommu(container);
                foreach (string name in target.DevicesOf(number))
                {
                    PrintDevice(group, name);
                }
                group.UnsetContainer();
            }
            catch (VfioException e)
            {
                output.WriteLine($"    {e.Message}");
            }
        }
    }

    private void PrintIommu(Container container)
    {
        string type = VfioExtension.TryGetName(container.IommuType, out string n) ? n : container.IommuType.ToString(System.Globalization.CultureInfo.InvariantCulture);
        output.WriteLine($"    iommu: {type}");
        if (container.IommuType is VfioExtension.SpaprTceIommu or VfioExtension.SpaprTceV2Iommu)
        {
            SpaprInfo s = container.GetSpaprInfo();
            output.WriteLine($"      32-bit window: 0x{s.Dma32WindowStart:x} size 0x{s.Dma32WindowSize:x}");
            if ((s.Flags & SpaprInfoFlags.Ddw) != 0)
            {
                output.WriteLine($"      dynamic windows: {s.MaxDynamicWindows}, page sizes {Sizes(s.DdwPageSizes)}, levels {s.Levels}");
            }
            return;
        }
        IommuInfo info = container.GetIommuInfo();
        output.WriteLine($"      page sizes: {Sizes(info.IovaPgsizes)}");
        foreach (IovaWindow w in info.IovaRanges)
        {
            output.WriteLine($"      usable IOVA: 0x{w.Start:x}-0x{w.Last:x}");
        }
        if (info.DmaAvail is uint avail)
        {
            output.WriteLine($"      DMA mappings available: {avail}");
        }
        if (info.Migration is MigrationInfo m)
        {
            output.WriteLine($"      dirty tracking: page sizes {Sizes(m.PgsizeBitmap)}, largest bitmap 0x{m.MaxDirtyBitmapSize:x} bytes");
        }
    }

    private void PrintDevice(Group group, string name)
    {
        try
        {
            using Device device = group.OpenDevice(name);
            DeviceInfo info = device.GetInfo();
            output.WriteLine($"    device {name}: {AbiNames.Format(info.Flags)}, {info.NumRegions} regions, {info.NumIrqs} irq types");
            for (uint i = 0; i < info.NumRegions; i++)
            {
                try
                {
                    RegionInfo r = device.GetRegionInfo(i);
                    if (r.Size != 0)
                    {
                        output.WriteLine($"      region {i}: size 0x{r.Size:x} {AbiNames.Format(r.Flags)}");
                    }
                }
                catch (VfioException e) when (e.Errno == Errno.EINVAL)
                {
                    // A region the device does not have (vfio-pci's VGA region without VGA answers EINVAL).
                }
            }
        }
        catch (VfioException e)
        {
            output.WriteLine($"    device {name}: {e.Message}");
        }
    }

    /// <summary>A page-size bitmap as sizes (<c>4KiB 2MiB 1GiB</c>).</summary>
    internal static string Sizes(ulong bitmap)
    {
        var parts = new List<string>();
        for (int bit = 0; bit < 64; bit++)
        {
            if ((bitmap & (1UL << bit)) != 0)
            {
                parts.Add(bit switch
                {
                    >= 40 => $"{1UL << (bit - 40)}TiB",
                    >= 30 => $"{1UL << (bit - 30)}GiB",
                    >= 20 => $"{1UL << (bit - 20)}MiB",
                    >= 10 => $"{1UL << (bit - 10)}KiB",
                    _ => $"{1UL << bit}B",
                });
            }
        }
        return parts.Count == 0 ? "none" : string.Join(' ', parts);
    }
}
