using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>What <c>VFIO_DEVICE_GET_IRQ_INFO</c> answered for one interrupt index.</summary>
/// <param name="Index">The index asked for (for vfio-pci a <see cref="VfioPciIrqIndex"/>).</param>
/// <param name="Flags">How the index signals: EVENTFD, and MASKABLE/AUTOMASKED (INTx) or NORESIZE.</param>
/// <param name="Count">Its vectors; 0 when the device does not implement it.</param>
public sealed record IrqInfo(uint Index, IrqInfoFlags Flags, uint Count);
