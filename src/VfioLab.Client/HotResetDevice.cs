namespace VfioLab.Client;

/// <summary>One device a PCI hot reset would also reset (<c>struct vfio_pci_dependent_device</c>).</summary>
public readonly record struct HotResetDevice(uint GroupId, ushort Segment, byte Bus, byte Devfn)
{
    /// <summary>The PCI address as Linux names it (<c>0000:01:00.0</c>).</summary>
    public override string ToString() => $"{Segment:x4}:{Bus:x2}:{Devfn >> 3:x2}.{Devfn & 7:x}";
}
