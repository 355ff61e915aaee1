using System.Buffers.Binary;
using System.Diagnostics;
using VfioLab.Abi;
using VfioLab.Client;

namespace VfioLab.Conformance.Payload;

/// <summary>
/// QEMU's <c>edu</c> teaching device (1234:11e8) driven through a VFIO device fd: its identification register and its
/// DMA engine, which copies between a 4 KiB buffer inside the device and bus addresses (IOVAs behind the IOMMU).
/// </summary>
/// <remarks>
/// Registers are BAR0 words, reached with pread/pwrite of region 0 in 4-byte accesses (vfio-pci's read/write path takes
/// 1, 2 and 4 bytes on every kernel the rig boots; the edu takes 4 or 8 at 0x80 and above, and a 4-byte write there
/// sets the whole 64-bit register). Quirks of QEMU 7.2's model, learned on the rig: it masks DMA addresses to 28 bits,
/// a transfer ending exactly at the buffer's end aborts QEMU (an off-by-one in its range check), and a transfer
/// completes about 100 ms of virtual time after it starts.
/// </remarks>
internal sealed class EduDevice(Device device)
{
    public const ushort Vendor = 0x1234;
    public const ushort DeviceId = 0x11e8;

    /// <summary>The identification register's value: version 1.0 and the 0xed signature.</summary>
    public const uint ExpectedIdent = 0x010000ed;

    /// <summary>Where the device's own buffer sits in the DMA engine's address space.</summary>
    public const ulong BufferAddress = 0x40000;

    public const int BufferSize = 0x1000;

    /// <summary>The largest transfer QEMU 7.2 survives (see the remarks).</summary>
    public const int MaxTransfer = BufferSize - 1;

    /// <summary>The edu's DMA mask: IOVAs must stay below 256 MiB or they wrap.</summary>
    public const ulong DmaAddressLimit = 1UL << 28;

    private const ulong IdentRegister = 0x00;
    private const ulong DmaSourceRegister = 0x80;
    private const ulong DmaDestinationRegister = 0x88;
    private const ulong DmaCountRegister = 0x90;
    private const ulong DmaCommandRegister = 0x98;

    private const uint DmaStart = 0x1;

    /// <summary>Direction bit: set, the device buffer goes to RAM; clear, RAM comes into the device buffer.</summary>
    private const uint DmaToRam = 0x2;

    private const int PciCommandOffset = 0x04;
    private const ushort PciCommandMemory = 0x2;
    private const ushort PciCommandBusMaster = 0x4;

    public uint Ident => Read32(IdentRegister);

    /// <summary>Sets memory decode and bus mastering in the PCI command register: vfio-pci enables neither when the
    /// device is opened, and QEMU drops a device's DMA while bus mastering is off.</summary>
    public ushort EnableBusMaster()
    {
        Span<byte> word = stackalloc byte[2];
        device.ReadRegion((uint)VfioPciRegionIndex.Config, PciCommandOffset, word);
        ushort command = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(word) | PciCommandMemory | PciCommandBusMaster);
        BinaryPrimitives.WriteUInt16LittleEndian(word, command);
        device.WriteRegion((uint)VfioPciRegionIndex.Config, PciCommandOffset, word);
        device.ReadRegion((uint)VfioPciRegionIndex.Config, PciCommandOffset, word);
        return BinaryPrimitives.ReadUInt16LittleEndian(word);
    }

    /// <summary>DMA from bus address <paramref name="iova"/> into the device buffer at <paramref name="bufferOffset"/>.</summary>
    public void CopyToDevice(ulong iova, int bufferOffset, int count, TimeSpan timeout) =>
        Run(iova, BufferAddress + (ulong)bufferOffset, count, 0, timeout);

    /// <summary>DMA from the device buffer at <paramref name="bufferOffset"/> to bus address <paramref name="iova"/>.</summary>
    public void CopyFromDevice(int bufferOffset, ulong iova, int count, TimeSpan timeout) =>
        Run(BufferAddress + (ulong)bufferOffset, iova, count, DmaToRam, timeout);

    private void Run(ulong source, ulong destination, int count, uint direction, TimeSpan timeout)
    {
        if (count <= 0 || count > MaxTransfer)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"an edu transfer is 1..{MaxTransfer} bytes");
        }
        ulong bus = direction == DmaToRam ? destination : source;
        if (bus >= DmaAddressLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(source), $"bus address 0x{bus:x} is past the edu's 28-bit DMA mask");
        }
        Write32(DmaSourceRegister, checked((uint)source));
        Write32(DmaDestinationRegister, checked((uint)destination));
        Write32(DmaCountRegister, (uint)count);
        Write32(DmaCommandRegister, DmaStart | direction);
        var clock = Stopwatch.StartNew();
        while ((Read32(DmaCommandRegister) & DmaStart) != 0)
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"edu {device.Name}: DMA 0x{source:x} -> 0x{destination:x} count 0x{count:x} still running after {timeout.TotalSeconds} s");
            }
            Thread.Sleep(5);
        }
    }

    private uint Read32(ulong register)
    {
        Span<byte> word = stackalloc byte[4];
        device.ReadRegion((uint)VfioPciRegionIndex.Bar0, register, word);
        return BinaryPrimitives.ReadUInt32LittleEndian(word);
    }

    private void Write32(ulong register, uint value)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(word, value);
        device.WriteRegion((uint)VfioPciRegionIndex.Bar0, register, word);
    }
}
