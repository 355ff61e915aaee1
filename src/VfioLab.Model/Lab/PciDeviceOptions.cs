namespace VfioLab.Lab;

/// <summary>
/// How one PCI function of a <see cref="LabHostBuilder"/> host looks: its BARs, its IOMMU group, the driver it
/// is bound to, and per-device IOMMU settings. Defaults: no BAR, a group of its own, bound to vfio-pci, behind the
/// host's IOMMU, isolated MSI and cache-coherent DMA.
/// </summary>
public sealed class PciDeviceOptions
{
    private readonly List<(int Index, ulong Size, bool Prefetchable, bool Is64Bit)> _bars = [];

    internal PciDeviceOptions()
    {
    }

    internal IReadOnlyList<(int Index, ulong Size, bool Prefetchable, bool Is64Bit)> Bars => _bars;

    internal int? GroupNumber { get; private set; }

    internal bool HostDriver { get; private set; }

    internal IommuKind? IommuOverride { get; private set; }

    internal IReadOnlyList<ulong>? IommuPageSizes { get; private set; }

    internal bool Coherent { get; private set; } = true;

    internal bool IsolatedMsi { get; private set; } = true;

    internal Pci.PciDeviceDescription Description { get; private set; } = Pci.PciDeviceDescription.Default;

    /// <summary>Config-space identity: vendor and device id, the 24-bit class code, subsystem ids and revision
    /// (default 1af4:1000, class 0).</summary>
    public PciDeviceOptions Ids(ushort vendor, ushort device, uint classCode = 0, ushort subsystemVendor = 0, ushort subsystem = 0, byte revision = 0)
    {
        Description = Description with
        {
            VendorId = vendor,
            DeviceId = device,
            ClassCode = classCode,
            SubsystemVendorId = subsystemVendor,
            SubsystemId = subsystem,
            Revision = revision,
        };
        return this;
    }

    /// <summary>PCI Express (the default: a PCIe capability, 4 KiB of config space, the ERR interrupt index) or
    /// conventional PCI (256 bytes of config space, no ERR index). A conventional function has no FLR, so the default
    /// reset method becomes <see cref="LabPciReset.None"/>; call <see cref="Reset"/> after this to choose another.</summary>
    public PciDeviceOptions Express(bool express)
    {
        Description = Description with
        {
            Express = express,
            Reset = !express && Description.Reset == Pci.PciResetMethod.Flr ? Pci.PciResetMethod.None : Description.Reset,
        };
        return this;
    }

    /// <summary>The reset method the PCI core finds (default <see cref="LabPciReset.Flr"/>).</summary>
    public PciDeviceOptions Reset(LabPciReset method)
    {
        Description = Description with { Reset = (Pci.PciResetMethod)(int)method };
        return this;
    }

    /// <summary>The interrupts the function offers: an INTx pin, <paramref name="msi"/> MSI vectors (0 or a power of two
    /// up to 32), <paramref name="msix"/> MSI-X vectors (0 to 2048) with the table at offset 0 of BAR
    /// <paramref name="msixBar"/> and the PBA after it. Default: INTx, 1 MSI vector, no MSI-X.</summary>
    public PciDeviceOptions Interrupts(bool intx, int msi, int msix, int msixBar = 0)
    {
        Description = Description with { IntxPin = intx, MsiVectors = msi, MsixVectors = msix, MsixBar = msixBar };
        return this;
    }

    /// <summary>An expansion ROM of <paramref name="size"/> bytes (a power of two, at least 2 KiB), readable through
    /// region 6.</summary>
    public PciDeviceOptions Rom(ulong size)
    {
        Description = Description with { RomSize = size };
        return this;
    }

    /// <summary>Adds memory BAR <paramref name="index"/> (0-5) of <paramref name="size"/> bytes, a power of two of
    /// at least 4 KiB; a 64-bit BAR takes two BAR registers.</summary>
    public PciDeviceOptions Bar(int index, ulong size, bool prefetchable = false, bool is64Bit = true)
    {
        _bars.Add((index, size, prefetchable, is64Bit));
        return this;
    }

    /// <summary>Puts the function into IOMMU group <paramref name="number"/> (shared with other functions given the same number).</summary>
    public PciDeviceOptions Group(int number)
    {
        if (number < 0)
        {
            throw new LabConfigurationException($"IOMMU group {number} is negative");
        }
        GroupNumber = number;
        return this;
    }

    /// <summary>Binds the function to a host driver instead of vfio-pci: its group is then not viable for VFIO.</summary>
    public PciDeviceOptions BoundToHostDriver()
    {
        HostDriver = true;
        return this;
    }

    /// <summary>Puts the function behind its own IOMMU unit of <paramref name="kind"/> (a second IOMMU instance).</summary>
    public PciDeviceOptions Iommu(IommuKind kind)
    {
        IommuOverride = kind;
        return this;
    }

    /// <summary>Overrides the page sizes of the function's IOMMU unit.</summary>
    public PciDeviceOptions WithIommuPageSizes(params ulong[] sizes)
    {
        IommuPageSizes = [.. sizes];
        return this;
    }

    /// <summary>The function's IOMMU unit cannot enforce cache coherency (IOMMU_CAP_ENFORCE_CACHE_COHERENCY false).</summary>
    public PciDeviceOptions NotCoherent()
    {
        Coherent = false;
        return this;
    }

    /// <summary>The function's group lacks MSI isolation (IOMMU_CAP_INTR_REMAP false): type1 then refuses it
    /// unless <c>allow_unsafe_interrupts</c> is set.</summary>
    public PciDeviceOptions WithoutIsolatedMsi()
    {
        IsolatedMsi = false;
        return this;
    }
}
