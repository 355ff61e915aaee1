using System.Numerics;
using VfioLab.Addressing;
using VfioLab.Pci;

namespace VfioLab.Lab;

/// <summary>
/// The rules a whole host description must meet before anything of it is built (<see cref="LabHostBuilder.Validate"/>):
/// every number against the limits of the hardware it models (<see cref="LabLimits"/>) and the budget on simulated
/// state, BARs that the PCI specification allows and the MMIO window can place, groups whose members agree, mediated
/// devices in groups of their own. The first refusal is a <see cref="LabConfigurationException"/> naming the subject
/// and the setting, so a scenario file can point at the key it came from.
/// </summary>
internal static class LabHostValidator
{
    public static void Validate(LabHostBuilder b)
    {
        ValidateHost(b);
        if (b.Devices.Count > LabLimits.MaxDevices)
        {
            Refuse("host", null, $"{b.Devices.Count} devices exceed the budget of {LabLimits.MaxDevices} devices on one host");
        }
        var groups = new Dictionary<int, LabHostBuilder.DeviceEntry>();
        (LabHostBuilder.DeviceEntry Device, ulong Sizes)? shared = null;
        var uuids = new Dictionary<Guid, string>();
        PciTopology placement = PciTopology.AboveRam(b.Memory, b.PageSize);
        foreach (LabHostBuilder.DeviceEntry d in b.Devices)
        {
            if (d.IsMdev)
            {
                if (uuids.TryGetValue(d.Uuid, out string? other))
                {
                    Refuse(d.Name, "address", $"mdev '{d.Name}': UUID {d.Uuid} is already device '{other}'");
                }
                uuids.Add(d.Uuid, d.Name);
            }
            else
            {
                ValidateIommuPageSizes(d.Options.IommuPageSizes, d.Name, "iommu_page_sizes");
                ValidateBars(d, placement);
                if (!b.IsSpapr && !d.Options.HostDriver)
                {
                    shared = ValidateSharedPageSize(b, d, shared);
                }
            }
            if (d.Options.GroupNumber is { } number)
            {
                if (groups.TryGetValue(number, out LabHostBuilder.DeviceEntry? first))
                {
                    ValidateGroupMember(b, first, d, number);
                }
                else
                {
                    groups.Add(number, d);
                }
            }
        }
    }

    private static void ValidateHost(LabHostBuilder b)
    {
        ulong memory = b.Memory;
        ulong page = b.PageSize;
        if (memory < page || memory % page != 0)
        {
            Refuse("host", "memory", $"host memory 0x{memory:x} is not a non-zero multiple of the page size 0x{page:x}");
        }
        if (memory > LabLimits.MaxMemoryBytes)
        {
            Refuse("host", "memory", $"host memory 0x{memory:x} exceeds the limit of 0x{LabLimits.MaxMemoryBytes:x} (1 PiB): "
                + $"RAM and the PCI MMIO window above it share the lower half of the {LabLimits.PhysicalAddressBits}-bit physical address space");
        }
        if (b.Frames.Scattered)
        {
            ulong runBytes = b.Frames.RunPages > memory / page ? memory : b.Frames.RunPages * page;
            ulong runs = (memory + runBytes - 1) / runBytes;
            if (runs > LabLimits.MaxFrameRuns)
            {
                Refuse("host", "frames", $"host memory 0x{memory:x} in scattered runs of {b.Frames.RunPages} page(s) makes {runs} runs of frames, "
                    + $"over the budget of {LabLimits.MaxFrameRuns} runs the model's state is held to (longer runs or less memory fit)");
            }
        }
        if (b.IommuPageSizeBitmap is { } bitmap)
        {
            ValidatePageSizeBitmap(bitmap, "host", "iommu_page_sizes");
        }
        if (b.Aperture is { } aperture)
        {
            ulong smallest = b.IommuPageSizeBitmap is { } bm ? bm & (~bm + 1) : LabLimits.MinIommuPageBytes;
            if ((aperture.Start & (smallest - 1)) != 0 || (aperture.Last != ulong.MaxValue && ((aperture.Last + 1) & (smallest - 1)) != 0))
            {
                Refuse("host", "aperture", $"aperture {aperture} does not start and end on a boundary of the IOMMU's smallest page 0x{smallest:x}");
            }
        }
    }

    private static void ValidateIommuPageSizes(IReadOnlyList<ulong>? sizes, string subject, string setting)
    {
        if (sizes is null)
        {
            return;
        }
        ulong bitmap = 0;
        for (int i = 0; i < sizes.Count; i++)
        {
            if (!BitOperations.IsPow2(sizes[i]))
            {
                Refuse(subject, $"{setting}[{i}]", $"{Who(subject)}IOMMU page size 0x{sizes[i]:x} is not a power of two");
            }
            bitmap |= sizes[i];
        }
        ValidatePageSizeBitmap(bitmap, subject, setting);
    }

    private static void ValidatePageSizeBitmap(ulong bitmap, string subject, string setting)
    {
        if (bitmap == 0)
        {
            Refuse(subject, setting, $"{Who(subject)}an IOMMU needs at least one page size");
        }
        if ((bitmap & (LabLimits.MinIommuPageBytes - 1)) != 0)
        {
            Refuse(subject, setting, $"{Who(subject)}IOMMU page size 0x{bitmap & (~bitmap + 1):x} is below the smallest IOPTE of any modelled IOMMU (0x{LabLimits.MinIommuPageBytes:x})");
        }
    }

    // The PCI rules of each BAR, then its placement in the MMIO window as the host would place it.
    private static void ValidateBars(LabHostBuilder.DeviceEntry d, PciTopology placement)
    {
        IReadOnlyList<(int Index, ulong Size, bool Prefetchable, bool Is64Bit)> bars = d.Options.Bars;
        for (int i = 0; i < bars.Count; i++)
        {
            (int index, ulong size, _, bool is64) = bars[i];
            string at = $"bars[{i}]";
            if (index is < 0 or > 5)
            {
                Refuse(d.Name, $"{at}.index", $"device '{d.Name}': BAR index {index} is not 0-5");
            }
            for (int j = 0; j < i; j++)
            {
                (int otherIndex, _, _, bool other64) = bars[j];
                if (otherIndex == index || (other64 && otherIndex + 1 == index) || (is64 && index + 1 == otherIndex))
                {
                    Refuse(d.Name, $"{at}.index", otherIndex == index
                        ? $"device '{d.Name}': BAR {index} is declared twice"
                        : $"device '{d.Name}': BAR {Math.Min(index, otherIndex)} is 64-bit and takes BAR register {Math.Max(index, otherIndex)} too");
                }
            }
            if (is64 && index == 5)
            {
                Refuse(d.Name, $"{at}.is64bit", $"device '{d.Name}': BAR 5 cannot be 64-bit (it would need a sixth BAR register)");
            }
            if (!BitOperations.IsPow2(size))
            {
                Refuse(d.Name, $"{at}.size", $"device '{d.Name}': BAR {index} size 0x{size:x} is not a power of two");
            }
            if (size < LabLimits.MinMemoryBarBytes)
            {
                Refuse(d.Name, $"{at}.size", $"device '{d.Name}': BAR {index} size 0x{size:x} is below the {LabLimits.MinMemoryBarBytes} bytes of the smallest memory BAR (PCI)");
            }
            if (!is64 && size > LabLimits.Max32BitBarBytes)
            {
                Refuse(d.Name, $"{at}.size", $"device '{d.Name}': BAR {index} size 0x{size:x} is over the 2 GiB a 32-bit BAR can decode");
            }
        }
        if (!placement.TryAddFunction(d.Address, d.Options.Description, bars.Select(bar => new PciBarRequest(bar.Index, bar.Size, bar.Prefetchable, bar.Is64Bit)), out string? error))
        {
            Refuse(d.Name, "bars", $"device '{d.Name}': {error}");
        }
    }

    // type1 gives a container the AND of its domains' page sizes; IOMMU units that share none would leave a
    // container holding both groups without any (pgsize_bitmap 0: MAP divides by nothing). Real units of one machine
    // always share one; the model refuses a host whose vfio-bound functions' units do not.
    private static (LabHostBuilder.DeviceEntry, ulong) ValidateSharedPageSize(LabHostBuilder b, LabHostBuilder.DeviceEntry d,
        (LabHostBuilder.DeviceEntry Device, ulong Sizes)? shared)
    {
        ulong sizes = b.UnitPageSizesOf(d.Options);
        if (shared is not { } s)
        {
            return (d, sizes);
        }
        if ((s.Sizes & sizes) == 0)
        {
            Refuse(d.Name, d.Options.IommuPageSizes is null ? "iommu" : "iommu_page_sizes",
                $"device '{d.Name}': its IOMMU unit's page sizes (0x{sizes:x}) share none with those of '{s.Device.Name}' and the devices before it (0x{s.Sizes:x}); "
                + "a type1 container holding both would have no page size");
        }
        return (s.Device, s.Sizes & sizes);
    }

    private static void ValidateGroupMember(LabHostBuilder b, LabHostBuilder.DeviceEntry first, LabHostBuilder.DeviceEntry d, int number)
    {
        if (first.IsMdev || d.IsMdev)
        {
            LabHostBuilder.DeviceEntry mdev = d.IsMdev ? d : first;
            Refuse(d.Name, "group", $"mdev '{mdev.Name}' needs an emulated group of its own; group {number} is also device '{(d.IsMdev ? first : d).Name}'");
        }
        if (LabHostBuilder.IommuKeyOf(first.Options) != LabHostBuilder.IommuKeyOf(d.Options))
        {
            Refuse(d.Name, "group", $"devices of IOMMU group {number} sit behind different IOMMUs ('{first.Name}' and '{d.Name}')");
        }
        if (first.Options.IsolatedMsi != d.Options.IsolatedMsi)
        {
            Refuse(d.Name, "isolated_msi", $"devices of IOMMU group {number} disagree on MSI isolation ('{first.Name}' and '{d.Name}'); the model keeps it per group");
        }
    }

    private static string Who(string subject) => subject == "host" ? string.Empty : $"device '{subject}': ";

    private static void Refuse(string subject, string? setting, string message) =>
        throw new LabConfigurationException(message) { Subject = subject, Setting = setting };
}
