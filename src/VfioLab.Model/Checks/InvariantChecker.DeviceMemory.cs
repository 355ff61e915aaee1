using VfioLab.Addressing;
using VfioLab.Simulation;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Checks;

// Device memory (seed 003, DESIGN.md): no IOMMU entry reaches the BAR of a released device, every entry
// into a vfio device's BAR is held by a device reference and a registered release notifier (seeds
// profile), and translations outside RAM reach device memory that exists (a BAR of some function, or
// another driver's MMIO). Cost: translations (merged runs) times BARs.
internal sealed partial class InvariantChecker
{
    private void CheckDeviceMemory(List<Type1State> type1, List<InvariantViolation> found)
    {
        List<BarRange> bars = BarRanges();
        bool seeds = host.Kernel.Profile == KernelSettings.Seeds;
        ulong ramEnd = host.Machine.Memory.FrameCount << host.Machine.PageShift;
        foreach (Type1State t in type1)
        {
            var held = new HashSet<(VfioDevice, ulong)>();
            foreach (DevicePfnmapSnapshot p in t.Snapshot.DevicePfnmaps)
            {
                CheckPfnmapHeld(t, p, found);
                if (!p.Releasing && p.NotifierRegistered && p.DeviceReferences > 0)
                {
                    foreach (ulong iova in p.MappingIovas)
                    {
                        held.Add((p.Device, iova));
                    }
                }
            }
            foreach (Translation x in t.Translations)
            {
                ulong physLast = x.Phys + (x.Last - x.Start);
                if (physLast < ramEnd)
                {
                    continue;
                }
                ulong backed = 0;
                foreach (BarRange bar in bars)
                {
                    ulong from = Math.Max(bar.Start, Math.Max(x.Phys, ramEnd));
                    ulong to = Math.Min(bar.Last, physLast);
                    if (from > to)
                    {
                        continue;
                    }
                    backed += to - from + 1;
                    ulong iova = x.Start + (from - x.Phys);
                    CheckBarTranslation(t, x, iova, bar, seeds, held, found);
                }
                ulong outside = physLast - Math.Max(x.Phys, ramEnd) + 1;
                int shift = host.Machine.PageShift;
                if (backed < outside && !host.Machine.IsOtherMmio(new Pfn(Math.Max(x.Phys, ramEnd) >> shift), outside >> shift))
                {
                    t.Report(found, InvariantName.TranslationBacked, $"{x} reaches physical memory that no BAR and no other driver's MMIO backs");
                }
            }
        }
    }

    // An entry into a device's BAR: never once the device was released or unplugged; in the seeds profile
    // only as part of a mapping that holds the device (reference and registered notifier).
    private static void CheckBarTranslation(Type1State t, Translation x, ulong iova, BarRange bar, bool seeds, HashSet<(VfioDevice, ulong)> held,
        List<InvariantViolation> found)
    {
        VfioDevice? device = bar.Device.Vfio;
        if (device is null)
        {
            return;
        }
        if (device.OpenCount == 0 || device.Removed)
        {
            string state = device.Removed ? "unplugged" : "released";
            t.Report(found, InvariantName.NoTranslationToReleasedDevice, seeds
                ? $"iova 0x{iova:x} still reaches BAR{bar.Index} of {bar.Device.Name} ({device.Name}), {state}"
                : $"iova 0x{iova:x} still reaches BAR{bar.Index} of {bar.Device.Name} ({device.Name}), {state}: the known upstream limitation " +
                  "(type1 maps PFNMAPs with no device reference or notifier, spec type1.md §5)");
            return;
        }
        if (!seeds)
        {
            return;
        }
        VfioDmaSnapshot? m = t.Snapshot.Mappings.FirstOrDefault(m => m.Iova <= iova && iova <= m.Last);
        if (m is null || !held.Contains((device, m.Iova)))
        {
            t.Report(found, InvariantName.PfnmapDeviceReferenced,
                $"iova 0x{iova:x} reaches BAR{bar.Index} of {bar.Device.Name} ({device.Name}) with no device reference and notifier held for {m?.ToString() ?? "any mapping"}");
        }
    }

    // A held device: referenced and its notifier registered while it is not being released; a device being
    // released (its deferred unregistration pending) keeps no mapping.
    private static void CheckPfnmapHeld(Type1State t, DevicePfnmapSnapshot p, List<InvariantViolation> found)
    {
        if (p.DeviceReferences <= 0 || (!p.Releasing && !p.NotifierRegistered))
        {
            t.Report(found, InvariantName.PfnmapDeviceReferenced,
                $"{p.Device.Name}: held for {p.MappingIovas.Count} mapping(s) with {p.DeviceReferences} reference(s), notifier {(p.NotifierRegistered ? "registered" : "missing")}");
        }
        if (p.Releasing && p.MappingIovas.Count > 0)
        {
            t.Report(found, InvariantName.NoTranslationToReleasedDevice, $"{p.Device.Name}: released, but 0x{p.MappingIovas.Count:x} mapping(s) of its memory remain");
        }
    }

    // Every BAR of every PCI device the host ever had (unplugged ones keep their old ranges), by address. A BAR
    // smaller than a page that starts a page owns the rest of it: vfio-pci reserves it (a dummy resource, so the
    // page can be mmapped and MAPped whole), and nothing else is placed there.
    private List<BarRange> BarRanges()
    {
        var list = new List<BarRange>();
        ulong pageMask = (1UL << host.Machine.PageShift) - 1;
        foreach (SimulatedDevice d in host.Devices.Values)
        {
            if (d.Function is null)
            {
                continue;
            }
            foreach (Pci.PciBar bar in d.Function.Bars)
            {
                ulong last = (bar.PhysRange.Start & pageMask) == 0 ? Math.Max(bar.PhysRange.Last, bar.PhysRange.Start | pageMask) : bar.PhysRange.Last;
                list.Add(new BarRange(bar.PhysRange.Start, last, bar.Index, d));
            }
        }
        return list;
    }

    /// <summary>One BAR's physical range and its device.</summary>
    private readonly record struct BarRange(ulong Start, ulong Last, int Index, SimulatedDevice Device);
}
