using System.Buffers.Binary;
using System.Diagnostics;
using VfioLab.Abi;

namespace VfioLab.Linux;

/// <summary>
/// QEMU's <c>edu</c> teaching device (1234:11e8) driven through a VFIO device fd: its identification register and its
/// DMA engine, which copies between a 4 KiB buffer inside the device and bus addresses (IOVAs behind the IOMMU). The
/// conformance rig's device: its smoke check and the real-kernel scenario runner's <c>dma</c> steps use it.
/// </summary>
/// <remarks>
/// Registers are BAR0 words, reached with pread/pwrite of region 0 (vfio-pci's offset encoding) in 4-byte accesses
/// (vfio-pci's read/write path takes 1, 2 and 4 bytes on every kernel the rig boots; the edu takes 4 or 8 at 0x80 and
/// above, and a 4-byte write there sets the whole 64-bit register). Quirks of QEMU 7.2's model, learned on the rig: it
/// masks DMA addresses to 28 bits, a transfer ending exactly at the buffer's end aborts QEMU (an off-by-one in its
/// range check), and a transfer completes about 100 ms of virtual time after it starts. The device buffer is not
/// reachable through BAR0: bytes get in and out of it only by DMA.
/// </remarks>
public sealed class EduDevice
{
    /// <summary>The edu's PCI vendor id.</summary>
    public const ushort Vendor = 0x1234;

    /// <summary>The edu's PCI device id.</summary>
    public const ushort DeviceId = 0x11e8;

    /// <summary>The identification register's value: version 1.0 and the 0xed signature.</summary>
    public const uint ExpectedIdent = 0x010000ed;

    /// <summary>Where the device's own buffer sits in the DMA engine's address space.</summary>
    public const ulong BufferAddress = 0x40000;

    /// <summary>The device buffer's size.</summary>
    public const int BufferSize = 0x1000;

    /// <summary>The largest transfer QEMU 7.2 survives (see the remarks).</summary>
    public const int MaxTransfer = BufferSize - 1;

    /// <summary>The edu's DMA mask: IOVAs must stay below 256 MiB or they wrap.</summary>
    public const ulong DmaAddressLimit = 1UL << 28;

    private const ulong IdentRegister = 0x00;
    private const ulong InterruptStatusRegister = 0x24;
    private const ulong InterruptRaiseRegister = 0x60;
    private const ulong InterruptAckRegister = 0x64;
    private const ulong DmaSourceRegister = 0x80;
    private const ulong DmaDestinationRegister = 0x88;
    private const ulong DmaCountRegister = 0x90;
    private const ulong DmaCommandRegister = 0x98;

    private const uint DmaStart = 0x1;

    /// <summary>Direction bit: set, the device buffer goes to RAM; clear, RAM comes into the device buffer.</summary>
    private const uint DmaToRam = 0x2;

    private const ulong PciCommandOffset = 0x04;
    private const ushort PciCommandMemory = 0x2;
    private const ushort PciCommandBusMaster = 0x4;

    private readonly ISyscallSurface _sys;
    private readonly int _fd;

    /// <summary>The edu behind VFIO device fd <paramref name="deviceFd"/> of <paramref name="sys"/>.</summary>
    /// <param name="sys">The process's system calls.</param>
    /// <param name="deviceFd">A VFIO device fd of an edu.</param>
    /// <param name="name">Its name in messages (its PCI address).</param>
    public EduDevice(ISyscallSurface sys, int deviceFd, string name)
    {
        ArgumentNullException.ThrowIfNull(sys);
        ArgumentNullException.ThrowIfNull(name);
        _sys = sys;
        _fd = deviceFd;
        Name = name;
    }

    /// <summary>The name given (its PCI address).</summary>
    public string Name { get; }

    /// <summary>The identification register.</summary>
    /// <exception cref="IOException">The register cannot be read.</exception>
    public uint Ident => Read32(IdentRegister);

    /// <summary>Sets memory decode and bus mastering in the PCI command register: vfio-pci enables neither when the
    /// device is opened, and QEMU drops a device's DMA while bus mastering is off. Returns the register read back.</summary>
    /// <exception cref="IOException">The config space cannot be read or written.</exception>
    public ushort EnableBusMaster()
    {
        ulong offset = VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + PciCommandOffset;
        Span<byte> word = stackalloc byte[2];
        Access(_sys.Pread(_fd, word, offset), "read PCI_COMMAND");
        ushort command = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(word) | PciCommandMemory | PciCommandBusMaster);
        BinaryPrimitives.WriteUInt16LittleEndian(word, command);
        Access(_sys.Pwrite(_fd, word, offset), "write PCI_COMMAND");
        Access(_sys.Pread(_fd, word, offset), "read PCI_COMMAND");
        return BinaryPrimitives.ReadUInt16LittleEndian(word);
    }

    /// <summary>DMA from bus address <paramref name="iova"/> into the device buffer at <paramref name="bufferOffset"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The count or address is beyond what the edu can move.</exception>
    /// <exception cref="TimeoutException">The transfer did not finish in time.</exception>
    public void CopyToDevice(ulong iova, int bufferOffset, int count, TimeSpan timeout) =>
        Run(iova, BufferAddress + (ulong)bufferOffset, count, 0, timeout);

    /// <summary>DMA from the device buffer at <paramref name="bufferOffset"/> to bus address <paramref name="iova"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The count or address is beyond what the edu can move.</exception>
    /// <exception cref="TimeoutException">The transfer did not finish in time.</exception>
    public void CopyFromDevice(int bufferOffset, ulong iova, int count, TimeSpan timeout) =>
        Run(BufferAddress + (ulong)bufferOffset, iova, count, DmaToRam, timeout);

    /// <summary>The edu's interrupt status register: the bits raised and not yet acknowledged.</summary>
    public uint InterruptStatus => Read32(InterruptStatusRegister);

    /// <summary>Raises an interrupt with status bits <paramref name="status"/>: MSI when the function's MSI is enabled,
    /// otherwise INTx, asserted until <see cref="AcknowledgeInterrupt"/> clears the bits.</summary>
    public void RaiseInterrupt(uint status) => Write32(InterruptRaiseRegister, status);

    /// <summary>Clears status bits <paramref name="status"/>; INTx is deasserted once none is left.</summary>
    public void AcknowledgeInterrupt(uint status) => Write32(InterruptAckRegister, status);

    /// <summary>Why the edu cannot move <paramref name="count"/> bytes at bus address <paramref name="iova"/>, or null
    /// when it can.</summary>
    public static string? CannotMove(ulong iova, ulong count)
    {
        if (count == 0 || count > MaxTransfer)
        {
            return $"the edu moves 1..0x{MaxTransfer:x} bytes per transfer, not 0x{count:x}";
        }
        if (iova >= DmaAddressLimit || DmaAddressLimit - iova < count)
        {
            return $"iova 0x{iova:x} + 0x{count:x} is past the edu's 28-bit DMA mask";
        }
        return null;
    }

    private void Run(ulong source, ulong destination, int count, uint direction, TimeSpan timeout)
    {
        ulong bus = direction == DmaToRam ? destination : source;
        if (CannotMove(bus, (ulong)Math.Max(count, 0)) is { } reason)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, reason);
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
                throw new TimeoutException($"edu {Name}: DMA 0x{source:x} -> 0x{destination:x} count 0x{count:x} still running after {timeout.TotalSeconds} s");
            }
            Thread.Sleep(5);
        }
    }

    private uint Read32(ulong register)
    {
        Span<byte> word = stackalloc byte[4];
        Access(_sys.Pread(_fd, word, VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0) + register), $"read BAR0+0x{register:x}");
        return BinaryPrimitives.ReadUInt32LittleEndian(word);
    }

    private void Write32(ulong register, uint value)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(word, value);
        Access(_sys.Pwrite(_fd, word, VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0) + register), $"write BAR0+0x{register:x}");
    }

    private void Access(long ret, string what)
    {
        if (ret < 0)
        {
            throw new IOException($"edu {Name}: {what}: {ErrnoExtensions.FromReturn(ret)}");
        }
    }
}
