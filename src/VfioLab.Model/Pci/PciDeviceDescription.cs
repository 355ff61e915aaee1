using System.Numerics;

namespace VfioLab.Pci;

/// <summary>
/// What a PCI function says about itself in config space: identity, PCI or PCI Express, the reset method the PCI
/// core will find, its interrupts (INTx pin, MSI and MSI-X vectors, the BAR holding the MSI-X table and PBA) and an
/// option ROM. <see cref="PciConfigImage"/> turns it into the type-0 header and capability list.
/// </summary>
/// <remarks>Immutable. The defaults are the model's historical device: a PCI Express function 1af4:1000 with an INTx
/// pin, one MSI vector, no MSI-X, FLR and no ROM.</remarks>
internal sealed record PciDeviceDescription
{
    /// <summary>Most MSI vectors a function can ask for (Multiple Message Capable is 3 bits: 2^5).</summary>
    public const int MaxMsiVectors = 32;

    /// <summary>Most MSI-X vectors (Table Size is 11 bits).</summary>
    public const int MaxMsixVectors = 2048;

    /// <summary>Smallest expansion ROM BAR (PCI spec: 2 KiB).</summary>
    public const ulong MinRomSize = 2048;

    /// <summary>The defaults.</summary>
    public static PciDeviceDescription Default { get; } = new();

    /// <summary>PCI_VENDOR_ID.</summary>
    public ushort VendorId { get; init; } = 0x1af4;

    /// <summary>PCI_DEVICE_ID.</summary>
    public ushort DeviceId { get; init; } = 0x1000;

    /// <summary>PCI_CLASS_PROG, PCI_CLASS_DEVICE: the 24-bit class code (base class, sub-class, programming interface).</summary>
    public uint ClassCode { get; init; }

    /// <summary>PCI_REVISION_ID.</summary>
    public byte Revision { get; init; }

    /// <summary>PCI_SUBSYSTEM_VENDOR_ID.</summary>
    public ushort SubsystemVendorId { get; init; }

    /// <summary>PCI_SUBSYSTEM_ID.</summary>
    public ushort SubsystemId { get; init; }

    /// <summary>A PCI Express function: a PCIe capability, 4 KiB of config space (<c>pdev-&gt;cfg_size</c>), extended capabilities.</summary>
    public bool Express { get; init; } = true;

    /// <summary>The reset method the PCI core finds.</summary>
    public PciResetMethod Reset { get; init; } = PciResetMethod.Flr;

    /// <summary>Whether PCI_INTERRUPT_PIN is non-zero (INTA#).</summary>
    public bool IntxPin { get; init; } = true;

    /// <summary>MSI vectors (0: no MSI capability; else a power of two up to 32).</summary>
    public int MsiVectors { get; init; } = 1;

    /// <summary>MSI-X vectors (0: no MSI-X capability; else up to 2048).</summary>
    public int MsixVectors { get; init; }

    /// <summary>The BAR holding the MSI-X table (at offset 0) and its PBA (after the table, 8-byte aligned).</summary>
    public int MsixBar { get; init; }

    /// <summary>Expansion ROM BAR size (0: none; else a power of two of at least 2 KiB).</summary>
    public ulong RomSize { get; init; }

    /// <summary>Whether the function has a PM capability: every PCI Express function has one (the spec requires it),
    /// a conventional one when its reset method is a PM reset.</summary>
    public bool PowerManagement => Express || Reset == PciResetMethod.Pm;

    /// <summary>Bytes of the MSI-X table: 16 per vector.</summary>
    public ulong MsixTableSize => (ulong)MsixVectors * 16;

    /// <summary>Offset of the PBA in <see cref="MsixBar"/>: just after the table.</summary>
    public ulong MsixPbaOffset => MsixTableSize;

    /// <summary>Bytes of the PBA: one bit per vector, in 8-byte units.</summary>
    public ulong MsixPbaSize => ((ulong)MsixVectors + 63) / 64 * 8;

    /// <summary>Why the description cannot be a function with <paramref name="bars"/>, or null.</summary>
    public string? Validate(IReadOnlyList<PciBarRequest> bars)
    {
        if (ClassCode > 0xff_ffff)
        {
            return $"class code 0x{ClassCode:x} is wider than 24 bits";
        }
        if (MsiVectors is < 0 or > MaxMsiVectors || (MsiVectors != 0 && !BitOperations.IsPow2(MsiVectors)))
        {
            return $"MSI vectors {MsiVectors}: a power of two from 1 to {MaxMsiVectors}, or 0 for no MSI capability";
        }
        if (MsixVectors is < 0 or > MaxMsixVectors)
        {
            return $"MSI-X vectors {MsixVectors}: from 1 to {MaxMsixVectors}, or 0 for no MSI-X capability";
        }
        if (MsixVectors > 0)
        {
            PciBarRequest? bar = bars.Any(b => b.Index == MsixBar) ? bars.First(b => b.Index == MsixBar) : null;
            if (bar is null)
            {
                return $"the MSI-X table is in BAR {MsixBar}, which the device does not have";
            }
            if (MsixPbaOffset + MsixPbaSize > bar.Value.Size)
            {
                return $"{MsixVectors} MSI-X vectors need 0x{MsixPbaOffset + MsixPbaSize:x} bytes of BAR {MsixBar} for the table and PBA; it has 0x{bar.Value.Size:x}";
            }
        }
        if (RomSize != 0 && (RomSize < MinRomSize || !BitOperations.IsPow2(RomSize) || RomSize > 1UL << 31))
        {
            return $"ROM size 0x{RomSize:x}: a power of two from 2 KiB to 2 GiB";
        }
        if (Reset == PciResetMethod.Flr && !Express)
        {
            return "reset flr needs a PCI Express function (FLR is advertised in the PCIe capability); use pm, slot, bus or none";
        }
        return null;
    }
}
