using VfioLab.Lab;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;

namespace VfioLab.Scenarios.Running;

/// <summary>
/// Builds a <see cref="LabHost"/> from a scenario's <c>host</c>, <c>devices</c> and <c>processes</c> through the
/// model's public <see cref="LabHostBuilder"/>. A set-up the model cannot build (two devices at one address, a group
/// mixing IOMMUs, a BAR that is not a power of two) is a located error at the device, process or host it concerns,
/// and nothing runs.
/// </summary>
internal static class ScenarioHostFactory
{
    public static LabHost Build(ScenarioDocument doc)
    {
        LabHostBuilder builder = Describe(doc, null);
        try
        {
            return builder.Build();
        }
        catch (LabConfigurationException e)
        {
            throw new ScenarioParseException(HostValidator.Locate(doc, null, e), e.Message);
        }
    }

    /// <summary>The builder holding <paramref name="doc"/>'s description, not yet validated as a whole; a call the
    /// builder refuses at once is a located error (at its key when <paramref name="root"/>, the parsed tree, is
    /// known).</summary>
    public static LabHostBuilder Describe(ScenarioDocument doc, ScenarioNode? root)
    {
        HostSpec h = doc.Host;
        string? unmodelled = h.Quirks.FirstOrDefault(q => !KernelQuirks.IsKnown(q));
        if (unmodelled is not null)
        {
            // Every quirk of SCENARIOS.md is modelled and the parser refuses other names, so only an in-process
            // caller reaches this; running it would silently show today's behaviour, so it is refused.
            throw new ScenarioParseException(new SourceLocation(doc.File, 1, 1), $"host.quirks: '{unmodelled}': this version of VfioLab does not model it");
        }

        var builder = new LabHostBuilder();
        At(doc, root, () => Host(builder, h));
        foreach (DeviceSpec d in doc.Devices)
        {
            At(doc, root, () => AddDevice(builder, d), d.Name);
        }
        foreach (ProcessSpec p in doc.Processes)
        {
            At(doc, root, () => builder.AddProcess(p.Name, p.Memlock, p.CapIpcLock), p.Name);
        }
        return builder;
    }

    private static void Host(LabHostBuilder builder, HostSpec h)
    {
        builder.WithMemory(h.Memory).WithPageSize(h.PageSize).WithIommu(Kind(h.Iommu)).WithKernel(h.Kernel);
        if (h.Frames.Layout == FrameLayoutKind.Scattered)
        {
            builder.WithScatteredFrames(h.Frames.RunPages, h.Frames.Seed);
        }
        if (h.IommuPageSizes is { } sizes)
        {
            builder.WithIommuPageSizes([.. sizes]);
        }
        if (h.Aperture is { } aperture)
        {
            builder.WithAperture(aperture.Start, aperture.Last);
        }
        foreach (ReservedRegionSpec r in h.ReservedRegions)
        {
            builder.AddReservedRegion(r.Start, r.Last, r.Type switch
            {
                Model.ReservedRegionKind.Msi => Lab.ReservedRegionKind.Msi,
                Model.ReservedRegionKind.Direct => Lab.ReservedRegionKind.Direct,
                Model.ReservedRegionKind.DirectRelaxable => Lab.ReservedRegionKind.DirectRelaxable,
                Model.ReservedRegionKind.SwMsi => Lab.ReservedRegionKind.SwMsi,
                _ => Lab.ReservedRegionKind.Reserved,
            });
        }
        foreach (string quirk in h.Quirks)
        {
            builder.WithQuirk(quirk);
        }
        builder.WithParameter("dma_entry_limit", h.Params.DmaEntryLimit)
            .WithParameter("disable_hugepages", h.Params.DisableHugepages ? 1UL : 0)
            .WithParameter("allow_unsafe_interrupts", h.Params.AllowUnsafeInterrupts ? 1UL : 0)
            .WithParameter("strict_mmio_maps", h.Params.StrictMmioMaps ? 1UL : 0);
    }

    private static void AddDevice(LabHostBuilder builder, DeviceSpec d)
    {
        if (d.Driver == DeviceDriverKind.Mdev)
        {
            if (!Guid.TryParse(d.Address, out Guid uuid))
            {
                throw new LabConfigurationException($"mdev '{d.Name}': address '{d.Address}' is not a UUID");
            }
            builder.AddMdevDevice(d.Name, uuid, d.Group, d.Misbehaving);
            return;
        }
        builder.AddPciDevice(d.Name, d.Address, o =>
        {
            foreach (BarSpec bar in d.Bars)
            {
                o.Bar(bar.Index, bar.Size, bar.Prefetchable, bar.Is64Bit);
            }
            if (d.Group is { } group)
            {
                o.Group(group);
            }
            if (d.Driver == DeviceDriverKind.Host)
            {
                o.BoundToHostDriver();
            }
            if (d.Iommu is { } iommu)
            {
                o.Iommu(Kind(iommu));
            }
            if (d.IommuPageSizes is { } sizes)
            {
                o.WithIommuPageSizes([.. sizes]);
            }
            if (d.Function is { } f)
            {
                o.Ids(f.Vendor, f.Device, f.ClassCode, f.SubsystemVendor, f.Subsystem, f.Revision)
                    .Express(f.Express)
                    .Reset(f.Reset)
                    .Interrupts(f.Intx, f.Msi, f.Msix, f.MsixBar)
                    .Rom(f.Rom);
            }
            if (!d.Coherent)
            {
                o.NotCoherent();
            }
            if (!d.IsolatedMsi)
            {
                o.WithoutIsolatedMsi();
            }
        });
    }

    private static IommuKind Kind(IommuHardware hw) => hw switch
    {
        IommuHardware.AmdVi => IommuKind.AmdVi,
        IommuHardware.SmmuV3 => IommuKind.SmmuV3,
        IommuHardware.SpaprTce => IommuKind.SpaprTce,
        _ => IommuKind.VtD,
    };

    /// <summary>Runs one description call; what the builder refuses is a parse error at the key, the device or
    /// process <paramref name="subject"/>, or the host.</summary>
    private static void At(ScenarioDocument doc, ScenarioNode? root, Action describe, string? subject = null)
    {
        try
        {
            describe();
        }
        catch (LabConfigurationException e)
        {
            LabConfigurationException located = e.Subject is null && subject is not null
                ? new LabConfigurationException(e.Message) { Subject = subject, Setting = e.Setting }
                : e;
            throw new ScenarioParseException(HostValidator.Locate(doc, root, located), e.Message);
        }
    }
}
