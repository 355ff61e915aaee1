using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Scenarios.Model;
using VfioLab.Simulation;

namespace VfioLab.Scenarios.Running;

/// <summary>
/// Builds a <see cref="SimulatedHost"/> from a scenario's <c>host</c>, <c>devices</c> and
/// <c>processes</c>. A set-up the model cannot build (two devices at one address, a group mixing
/// IOMMUs, a BAR that is not a power of two) is a located error, and nothing runs.
/// </summary>
internal static class ScenarioHostFactory
{
    public static SimulatedHost Build(ScenarioDocument doc, out IReadOnlyDictionary<string, Process> processes)
    {
        HostSpec h = doc.Host;
        int pageShift = System.Numerics.BitOperations.Log2(h.PageSize);
        FrameLayout layout = h.Frames.Layout == FrameLayoutKind.Scattered
            ? FrameLayout.ScatteredRuns(h.Frames.RunPages, h.Frames.Seed)
            : FrameLayout.Contiguous;
        IommuHardwareProfile profile = Profile(h.Iommu, h.IommuPageSizes, h.Aperture, h.ReservedRegions, null);
        string? unmodelled = h.Quirks.FirstOrDefault(q => !QuirkNames.Modelled.Contains(q, StringComparer.Ordinal));
        if (unmodelled is not null)
        {
            // Every quirk of SCENARIOS.md is modelled and the parser refuses other names, so only an
            // in-process caller (or a name added to QuirkNames.All before its model) reaches this;
            // running it would silently show today's behaviour, so it is refused.
            throw new ScenarioParseException(new SourceLocation(doc.File, 1, 1),
                $"host.quirks: '{unmodelled}': this version of VfioLab does not model it");
        }
        var kernel = new KernelSettings(
            h.Kernel == KernelProfile.Linux618 ? KernelSettings.Linux618 : KernelSettings.Seeds,
            h.Quirks, h.Params.DmaEntryLimit, h.Params.DisableHugepages, h.Params.AllowUnsafeInterrupts, h.Params.StrictMmioMaps);
        if (h.Memory < h.PageSize || h.Memory % h.PageSize != 0)
        {
            throw new ScenarioParseException(new SourceLocation(doc.File, 1, 1), $"host memory 0x{h.Memory:x} is not a multiple of the page size 0x{h.PageSize:x}");
        }
        var host = new SimulatedHost(h.Memory, pageShift, layout, profile, kernel);
        if (h.Iommu != IommuHardware.SpaprTce)
        {
            host.RegisterType1();
        }
        else
        {
            host.RegisterSpapr();
        }

        HashSet<int> explicitGroups = [.. doc.Devices.Where(d => d.Group is not null).Select(d => d.Group!.Value)];
        int nextGroup = 0;
        int NextFreeGroup()
        {
            while (explicitGroups.Contains(nextGroup) || host.IommuGroups.ContainsKey(nextGroup))
            {
                nextGroup++;
            }
            return nextGroup;
        }

        var perDeviceProfiles = new Dictionary<string, IommuHardwareProfile>(StringComparer.Ordinal);
        foreach (DeviceSpec d in doc.Devices)
        {
            string? error;
            int group = d.Group ?? NextFreeGroup();
            if (d.Driver == DeviceDriverKind.Mdev)
            {
                if (!Guid.TryParse(d.Address, out Guid uuid))
                {
                    throw new ScenarioParseException(d.Location, $"mdev '{d.Name}': address '{d.Address}' is not a UUID");
                }
                error = host.AddMdevDevice(d.Name, uuid, new Vfio.Mdev.MdevVendorDriver(d.Misbehaving, pageShift), group);
            }
            else
            {
                if (!PciAddress.TryParse(d.Address, out PciAddress address))
                {
                    throw new ScenarioParseException(d.Location, $"device '{d.Name}': '{d.Address}' is not a PCI address (0000:01:00.0)");
                }
                IommuHardwareProfile deviceProfile = profile;
                if (d.Iommu is not null || d.IommuPageSizes is not null || !d.Coherent)
                {
                    // Devices with the same per-device IOMMU settings share one IOMMU instance.
                    string key = $"{d.Iommu}/{string.Join(",", d.IommuPageSizes ?? [])}/{d.Coherent}";
                    if (!perDeviceProfiles.TryGetValue(key, out IommuHardwareProfile? p))
                    {
                        p = Profile(d.Iommu ?? h.Iommu, d.IommuPageSizes ?? (d.Iommu is null ? h.IommuPageSizes : null),
                            d.Iommu is null ? h.Aperture : null, h.ReservedRegions, d.Coherent ? null : false);
                        perDeviceProfiles.Add(key, p);
                    }
                    deviceProfile = p;
                }
                var bars = d.Bars.Select(b => new PciBarRequest(b.Index, b.Size, b.Prefetchable, b.Is64Bit)).ToList();
                DriverBinding binding = d.Driver == DeviceDriverKind.Host ? DriverBinding.Host : DriverBinding.Vfio;
                error = host.AddPciDevice(d.Name, address, bars, binding, group, deviceProfile, d.IsolatedMsi ? null : false);
            }
            if (error is not null)
            {
                throw new ScenarioParseException(d.Location, error);
            }
        }
        host.Seal();

        var procs = new Dictionary<string, Process>(StringComparer.Ordinal);
        foreach (ProcessSpec p in doc.Processes)
        {
            procs.Add(p.Name, host.Spawn(p.Name, p.Memlock, p.CapIpcLock));
        }
        if (procs.Count == 0)
        {
            procs.Add("main", host.Spawn("main", ProcessSpec.DefaultMemlock, false));
        }
        processes = procs;
        return host;
    }

    private static IommuHardwareProfile Profile(IommuHardware hw, IReadOnlyList<ulong>? pageSizes, AddressRangeSpec? aperture,
        IReadOnlyList<ReservedRegionSpec> extra, bool? coherent)
    {
        IommuHardwareProfile baseProfile = hw switch
        {
            IommuHardware.AmdVi => IommuHardwareProfile.AmdVi,
            IommuHardware.SmmuV3 => IommuHardwareProfile.SmmuV3,
            IommuHardware.SpaprTce => IommuHardwareProfile.SpaprTce,
            _ => IommuHardwareProfile.VtD,
        };
        ulong? bitmap = pageSizes is null ? null : pageSizes.Aggregate(0UL, (acc, s) => acc | s);
        ByteRange? ap = aperture is null ? null : new ByteRange(aperture.Start, aperture.Last);
        var regions = extra.Select(r => new ReservedRegion(new ByteRange(r.Start, r.Last), r.Type switch
        {
            ReservedRegionKind.Msi => ReservedRegionType.Msi,
            ReservedRegionKind.Direct => ReservedRegionType.Direct,
            ReservedRegionKind.DirectRelaxable => ReservedRegionType.DirectRelaxable,
            ReservedRegionKind.SwMsi => ReservedRegionType.SwMsi,
            _ => ReservedRegionType.Reserved,
        })).ToList();
        return baseProfile.WithOverrides(bitmap, ap, regions, null, coherent);
    }
}
