using System.Buffers.Binary;

namespace VfioLab.Pci;

/// <summary>
/// One PCI function as hardware: its address, vendor/device id, memory BARs and their contents, and
/// a type-0 config space whose command register gates memory decode (<c>struct pci_dev</c> on the
/// kernel side, the device itself here). A function-level reset clears the command register, so
/// after reset the BARs do not decode until software sets PCI_COMMAND_MEMORY again (vfio-pci
/// restores the saved state around its resets, which <see cref="SaveState"/>/<see cref="RestoreState"/> stand for).
/// </summary>
/// <remarks>
/// Lock: <c>_lock</c>, a leaf lock, taken by every method; it protects <c>_config</c>,
/// <see cref="InReset"/>, <see cref="ResetCount"/> and the contents of every BAR. Never change:
/// <see cref="Address"/>, <see cref="Description"/>, <see cref="Bars"/>, <see cref="RomBase"/>, <c>_initial</c>,
/// <c>_writable</c>. Config space follows the description (<see cref="PciConfigImage"/>): only the bits its
/// write mask allows change, and a reset returns every writable bit to its power-on value.
/// </remarks>
internal sealed class PciFunction
{
    /// <summary>Config offset of PCI_COMMAND.</summary>
    public const int CommandOffset = 0x04;

    /// <summary>Config offset of BAR0 (PCI_BASE_ADDRESS_0).</summary>
    public const int Bar0Offset = 0x10;

    private readonly object _lock = new();
    private readonly byte[] _config;
    private readonly byte[] _initial;
    private readonly byte[] _writable;
    private readonly PciBar?[] _barsByIndex = new PciBar?[6];
    private bool _inReset;
    private int _resetCount;

    internal PciFunction(PciAddress address, PciDeviceDescription description, IReadOnlyList<PciBar> bars, ulong romBase)
    {
        Address = address;
        Description = description;
        Bars = bars;
        RomBase = romBase;
        foreach (PciBar bar in bars)
        {
            _barsByIndex[bar.Index] = bar;
        }
        var image = PciConfigImage.Build(description, bars, romBase, address);
        _config = image.Bytes;
        _initial = (byte[])image.Bytes.Clone();
        _writable = image.Writable;
    }

    /// <summary>What the function says about itself (ids, PCIe, reset method, interrupts, ROM).</summary>
    public PciDeviceDescription Description { get; }

    /// <summary><c>pdev-&gt;cfg_size</c>: 4 KiB for PCI Express, 256 bytes for conventional PCI.</summary>
    public int ConfigSize => _config.Length;

    /// <summary>Physical base of the expansion ROM BAR (0 when the function has none).</summary>
    public ulong RomBase { get; }

    /// <summary>domain:bus:device.function.</summary>
    public PciAddress Address { get; }

    /// <summary>PCI vendor id.</summary>
    public ushort VendorId => Description.VendorId;

    /// <summary>PCI device id.</summary>
    public ushort DeviceId => Description.DeviceId;

    /// <summary>The memory BARs, in index order.</summary>
    public IReadOnlyList<PciBar> Bars { get; }

    /// <summary>The command register.</summary>
    public PciCommand Command
    {
        get
        {
            lock (_lock)
            {
                return (PciCommand)BinaryPrimitives.ReadUInt16LittleEndian(_config.AsSpan(CommandOffset));
            }
        }
    }

    /// <summary>Whether PCI_COMMAND_MEMORY is set.</summary>
    public bool MemoryEnabled => (Command & PciCommand.Memory) != 0;

    /// <summary>Whether PCI_COMMAND_MASTER is set.</summary>
    public bool BusMasterEnabled => (Command & PciCommand.Master) != 0;

    /// <summary>Whether the function is between <see cref="BeginReset"/> and <see cref="EndReset"/>.</summary>
    public bool InReset
    {
        get { lock (_lock) { return _inReset; } }
    }

    /// <summary>Whether the BARs respond to memory accesses now: memory enabled and not in reset.</summary>
    public bool DecodesMemory
    {
        get
        {
            lock (_lock)
            {
                return !_inReset && (BinaryPrimitives.ReadUInt16LittleEndian(_config.AsSpan(CommandOffset)) & (ushort)PciCommand.Memory) != 0;
            }
        }
    }

    /// <summary>Number of completed resets (function or bus/slot).</summary>
    public int ResetCount
    {
        get { lock (_lock) { return _resetCount; } }
    }

    /// <summary>The BAR with register index <paramref name="index"/>, if the function has one.</summary>
    public PciBar? Bar(int index) => index is >= 0 and < 6 ? _barsByIndex[index] : null;

    /// <summary>Reads config space; bytes past the modelled space read as 0xff (no device there).</summary>
    public void ReadConfig(int offset, Span<byte> destination)
    {
        lock (_lock)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                int at = offset + i;
                destination[i] = at >= 0 && at < _config.Length ? _config[at] : (byte)0xff;
            }
        }
    }

    /// <summary>
    /// Writes config space as software would: only the bits the description makes writable change (the
    /// command register, cache line, latency timer, interrupt line, ROM enable, PM state, MSI enable, message
    /// enable, address and data, MSI-X enable and function mask, PCIe device control); ids, BAR registers
    /// (assigned by the topology), capability headers and read-only registers keep their value.
    /// </summary>
    public void WriteConfig(int offset, ReadOnlySpan<byte> source)
    {
        lock (_lock)
        {
            for (int i = 0; i < source.Length; i++)
            {
                int at = offset + i;
                if (at >= 0 && at < _config.Length)
                {
                    byte mask = _writable[at];
                    _config[at] = (byte)((_config[at] & ~mask) | (source[i] & mask));
                }
            }
        }
    }

    /// <summary>The 8-bit register at <paramref name="offset"/>.</summary>
    public byte ReadConfigByte(int offset)
    {
        Span<byte> b = stackalloc byte[1];
        ReadConfig(offset, b);
        return b[0];
    }

    /// <summary>The 16-bit register at <paramref name="offset"/>.</summary>
    public ushort ReadConfigWord(int offset)
    {
        Span<byte> b = stackalloc byte[2];
        ReadConfig(offset, b);
        return BinaryPrimitives.ReadUInt16LittleEndian(b);
    }

    /// <summary>The 32-bit register at <paramref name="offset"/>.</summary>
    public uint ReadConfigDword(int offset)
    {
        Span<byte> b = stackalloc byte[4];
        ReadConfig(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    /// <summary>Writes the 16-bit register at <paramref name="offset"/> (its writable bits).</summary>
    public void WriteConfigWord(int offset, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        WriteConfig(offset, b);
    }

    /// <summary>Sets or clears bits of the 16-bit register at <paramref name="offset"/> (its writable bits):
    /// how the PCI core turns MSI, MSI-X and INTx disable on and off.</summary>
    public void UpdateConfigWord(int offset, ushort bits, bool set)
    {
        lock (_lock)
        {
            ushort value = BinaryPrimitives.ReadUInt16LittleEndian(_config.AsSpan(offset));
            value = set ? (ushort)(value | bits) : (ushort)(value & ~bits);
            Span<byte> b = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(b, value);
            for (int i = 0; i < 2; i++)
            {
                byte mask = _writable[offset + i];
                _config[offset + i] = (byte)((_config[offset + i] & ~mask) | (b[i] & mask));
            }
        }
    }

    /// <summary>Reads the expansion ROM image at <paramref name="offset"/>: a PCI ROM header (0x55 0xaa), a PCI data
    /// structure at 0x1c naming the ids and the image length (the whole ROM, in 512-byte units, the last image), and
    /// zeros; what <c>pci_map_rom</c> parses to find the image size.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The function has no ROM or the read leaves it (a model bug).</exception>
    public void ReadRom(ulong offset, Span<byte> destination)
    {
        ulong size = Description.RomSize;
        if (size == 0 || offset > size || (ulong)destination.Length > size - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"{Address} ROM: read at 0x{offset:x} length 0x{destination.Length:x} out of range");
        }
        Span<byte> header = stackalloc byte[0x34];
        header.Clear();
        header[0] = 0x55;
        header[1] = 0xaa;
        BinaryPrimitives.WriteUInt16LittleEndian(header[0x18..], 0x1c);
        "PCIR"u8.CopyTo(header[0x1c..]);
        BinaryPrimitives.WriteUInt16LittleEndian(header[0x20..], VendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(header[0x22..], DeviceId);
        BinaryPrimitives.WriteUInt16LittleEndian(header[0x26..], 0x18);
        BinaryPrimitives.WriteUInt16LittleEndian(header[0x2c..], (ushort)Math.Min(size / 512, 0xffff));
        header[0x31] = 0x80;
        for (int i = 0; i < destination.Length; i++)
        {
            ulong at = offset + (ulong)i;
            destination[i] = at < (ulong)header.Length ? header[(int)at] : (byte)0;
        }
    }

    /// <summary>Bytes of ROM image <c>pci_map_rom</c> finds (the image length of its PCI data structure).</summary>
    public ulong RomImageSize => Math.Min(Description.RomSize / 512, 0xffff) * 512;

    /// <summary>Writes the whole command register (a 16-bit config write at 0x04).</summary>
    public void WriteCommand(PciCommand value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)value);
        WriteConfig(CommandOffset, b);
    }

    /// <summary>Sets or clears PCI_COMMAND_MEMORY, leaving the other bits.</summary>
    public void SetMemoryEnable(bool enable)
    {
        PciCommand c = Command;
        WriteCommand(enable ? c | PciCommand.Memory : c & ~PciCommand.Memory);
    }

    /// <summary>
    /// A device access to BAR memory at <paramref name="offset"/> (a CPU load through an mmap, or a
    /// peer's DMA). When the BAR does not decode (memory disabled or in reset) the access is an
    /// Unsupported Request: reads return all ones and the method returns false.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">No such BAR, or the access leaves it (a model bug).</exception>
    public bool TryReadBar(int index, ulong offset, Span<byte> destination)
    {
        PciBar bar = CheckedBar(index, offset, (ulong)destination.Length);
        lock (_lock)
        {
            if (!DecodesMemoryLocked())
            {
                destination.Fill(0xff);
                return false;
            }
            bar.ReadRaw(offset, destination);
            return true;
        }
    }

    /// <summary>A write to BAR memory; dropped (returns false) when the BAR does not decode.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No such BAR, or the access leaves it (a model bug).</exception>
    public bool TryWriteBar(int index, ulong offset, ReadOnlySpan<byte> source)
    {
        PciBar bar = CheckedBar(index, offset, (ulong)source.Length);
        lock (_lock)
        {
            if (!DecodesMemoryLocked())
            {
                return false;
            }
            bar.WriteRaw(offset, source);
            return true;
        }
    }

    /// <summary>
    /// Function-level reset (FLR, <c>pcie_flr</c>): every writable register returns to its power-on value, so the
    /// command register is 0 (memory decode and bus mastering off until software re-enables them) and MSI, MSI-X
    /// and the power state are back to reset. BAR contents are kept (device memory is not defined by the reset;
    /// the model keeps it so tests can see stale data).
    /// </summary>
    public void FunctionReset()
    {
        BeginReset();
        EndReset();
    }

    /// <summary>Starts a reset window (a bus/slot reset spans several functions): the BARs stop
    /// decoding and every writable register returns to its power-on value (the command register is cleared).</summary>
    public void BeginReset()
    {
        lock (_lock)
        {
            _inReset = true;
            for (int i = 0; i < _config.Length; i++)
            {
                byte mask = _writable[i];
                _config[i] = (byte)((_config[i] & ~mask) | (_initial[i] & mask));
            }
        }
    }

    /// <summary>Ends a reset window.</summary>
    public void EndReset()
    {
        lock (_lock)
        {
            System.Diagnostics.Debug.Assert(_inReset, "EndReset without BeginReset");
            _inReset = false;
            _resetCount++;
        }
    }

    /// <summary>What <c>pci_save_state</c> keeps: the config space.</summary>
    public PciSavedState SaveState()
    {
        lock (_lock)
        {
            return new PciSavedState((byte[])_config.Clone());
        }
    }

    /// <summary><c>pci_restore_state</c>: writes the saved registers back.</summary>
    public void RestoreState(PciSavedState state) => WriteConfig(0, state.Config);

    /// <inheritdoc />
    public override string ToString() => $"{Address} [{VendorId:x4}:{DeviceId:x4}]";

    private bool DecodesMemoryLocked()
    {
        System.Diagnostics.Debug.Assert(Monitor.IsEntered(_lock), "the function's lock must be held");
        return !_inReset && (_config[CommandOffset] & (byte)PciCommand.Memory) != 0;
    }

    private PciBar CheckedBar(int index, ulong offset, ulong length)
    {
        PciBar? bar = Bar(index);
        if (bar is null || offset > bar.Size || length > bar.Size - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"{Address} BAR{index}: access at 0x{offset:x} length 0x{length:x} out of range");
        }
        return bar;
    }
}

/// <summary>Saved config state of a <see cref="PciFunction"/> (<c>struct pci_saved_state</c>).</summary>
internal readonly record struct PciSavedState(byte[] Config)
{
    /// <summary>The saved command register.</summary>
    public PciCommand Command => (PciCommand)BinaryPrimitives.ReadUInt16LittleEndian(Config.AsSpan(PciFunction.CommandOffset));
}
