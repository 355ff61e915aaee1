using VfioLab.Lab;

namespace VfioLab.Scenarios.Model;

/// <summary>
/// What a PCI device of the scenario says about itself: the <c>ids</c>, <c>express</c>, <c>reset</c>, <c>irqs</c> and
/// <c>rom</c> fields. <see cref="Default"/> is the device every scenario had before these fields existed (1af4:1000,
/// PCI Express, FLR, INTx and one MSI vector, no MSI-X, no ROM).
/// </summary>
internal sealed record PciFunctionSpec(
    ushort Vendor,
    ushort Device,
    uint ClassCode,
    ushort SubsystemVendor,
    ushort Subsystem,
    byte Revision,
    bool Express,
    LabPciReset Reset,
    bool Intx,
    int Msi,
    int Msix,
    int MsixBar,
    ulong Rom)
{
    public static PciFunctionSpec Default { get; } = new(0x1af4, 0x1000, 0, 0, 0, 0, true, LabPciReset.Flr, true, 1, 0, 0, 0);
}
