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
/// <see cref="Address"/>, <see cref="VendorId"/>, <see cref="DeviceId"/>, <see cref="Bars"/>.
/// </remarks>
internal sealed class PciFunction
{
    /// <summary>Config offset of PCI_COMMAND.</summary>
    public const int CommandOffset = 0x04;

    /// <summary>Config offset of BAR0 (PCI_BASE_ADDRESS_0).</summary>
    public const int Bar0Offset = 0x10;

    /// <summary>Size of the conventional config space modelled.</summary>
    public const int ConfigSize = 256;

    // Command bits software can change (I/O, memory, master, special, MWI, palette, parity, SERR, fast b2b, INTx disable).
    private const ushort CommandWritableMask = 0x07ff;

    private readonly object _lock = new();
    private readonly byte[] _config = new byte[ConfigSize];
    private readonly PciBar?[] _barsByIndex = new PciBar?[6];
    private bool _inReset;
    private int _resetCount;

    internal PciFunction(PciAddress address, ushort vendorId, ushort deviceId, IReadOnlyList<PciBar> bars)
    {
        Address = address;
        VendorId = vendorId;
        DeviceId = deviceId;
        Bars = bars;
        BinaryPrimitives.WriteUInt16LittleEndian(_config.AsSpan(0x00), vendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(_config.AsSpan(0x02), deviceId);
        foreach (PciBar bar in bars)
        {
            _barsByIndex[bar.Index] = bar;
            uint low = (uint)(bar.Base.Value & 0xffff_fff0) | (bar.Is64Bit ? 0x4u : 0u) | (bar.Prefetchable ? 0x8u : 0u);
            BinaryPrimitives.WriteUInt32LittleEndian(_config.AsSpan(Bar0Offset + (4 * bar.Index)), low);
            if (bar.Is64Bit && bar.Index < 5)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(_config.AsSpan(Bar0Offset + (4 * (bar.Index + 1))), (uint)(bar.Base.Value >> 32));
            }
        }
    }

    /// <summary>domain:bus:device.function.</summary>
    public PciAddress Address { get; }

    /// <summary>PCI vendor id.</summary>
    public ushort VendorId { get; }

    /// <summary>PCI device id.</summary>
    public ushort DeviceId { get; }

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
                destination[i] = at is >= 0 and < ConfigSize ? _config[at] : (byte)0xff;
            }
        }
    }

    /// <summary>
    /// Writes config space as software would. Only the command register's writable bits take
    /// effect in the model; ids and BAR registers are read-only here (BARs are assigned by the
    /// topology, sizing is not modelled); other bytes below 0x40 are ignored; bytes from 0x40 on
    /// (capabilities) are stored.
    /// </summary>
    public void WriteConfig(int offset, ReadOnlySpan<byte> source)
    {
        lock (_lock)
        {
            for (int i = 0; i < source.Length; i++)
            {
                int at = offset + i;
                if (at == CommandOffset)
                {
                    _config[at] = (byte)(source[i] & (CommandWritableMask & 0xff));
                }
                else if (at == CommandOffset + 1)
                {
                    _config[at] = (byte)(source[i] & (CommandWritableMask >> 8));
                }
                else if (at is >= 0x40 and < ConfigSize)
                {
                    _config[at] = source[i];
                }
            }
        }
    }

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
    /// Function-level reset (FLR, <c>pcie_flr</c>): the command register returns to 0, so memory
    /// decode and bus mastering are off until software re-enables them. BAR contents are kept (device
    /// memory is not defined by the reset; the model keeps it so tests can see stale data).
    /// </summary>
    public void FunctionReset()
    {
        BeginReset();
        EndReset();
    }

    /// <summary>Starts a reset window (a bus/slot reset spans several functions): the BARs stop
    /// decoding and the command register is cleared.</summary>
    public void BeginReset()
    {
        lock (_lock)
        {
            _inReset = true;
            _config[CommandOffset] = 0;
            _config[CommandOffset + 1] = 0;
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

    /// <summary>What <c>pci_save_state</c> keeps that the model changes: the command register.</summary>
    public PciSavedState SaveState() => new(Command);

    /// <summary><c>pci_restore_state</c>: writes the saved command register back.</summary>
    public void RestoreState(PciSavedState state) => WriteCommand(state.Command);

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

/// <summary>Saved config state of a <see cref="PciFunction"/> (the part of <c>struct pci_saved_state</c> the model uses).</summary>
internal readonly record struct PciSavedState(PciCommand Command);
