using VfioLab.Addressing;

namespace VfioLab.Host;

/// <summary>Where CPU accesses to physical addresses outside RAM go (the PCI host bridge): the Pci
/// layer registers one on the <see cref="Machine"/> so BAR mmaps reach device memory.</summary>
internal interface IMmioBus
{
    /// <summary>A CPU load; false when no device decodes the address (the host then reads all-ones).</summary>
    bool TryRead(PhysAddr address, Span<byte> destination);

    /// <summary>A CPU store; false when no device decodes the address (the store is dropped).</summary>
    bool TryWrite(PhysAddr address, ReadOnlySpan<byte> source);
}
