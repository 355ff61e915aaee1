using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Pci;

namespace VfioLab.Vfio.Pci;

internal sealed partial class VfioPciDriver
{
    /// <inheritdoc />
    public long Read(VfioDevice device, Span<byte> destination, ulong offset) => Access(State(device), device.Faults, destination, offset, write: false);

    /// <inheritdoc />
    public long Write(VfioDevice device, ReadOnlySpan<byte> source, ulong offset)
    {
        byte[] copy = source.ToArray();
        return Access(State(device), device.Faults, copy, offset, write: true);
    }

    // vfio_pci_core_read/write: the region index selects config space or a BAR; a BAR's first access maps
    // it (vfio_pci_bar_rw's setup_barmap, ENOMEM); BAR access needs memory decode (-EIO otherwise, as
    // vfio_pci_core_do_io_rw's memory test).
    private static long Access(VfioPciDevice pci, Diagnostics.FaultInjector faults, Span<byte> buffer, ulong offset, bool write)
    {
        ulong index = VfioPciDevice.IndexOf(offset);
        ulong within = VfioPciDevice.OffsetWithin(offset);
        if (index >= VfioPci.NumRegions)
        {
            return Errno.EINVAL.AsReturn();
        }
        if (index == (ulong)VfioPciRegionIndex.Config)
        {
            return ConfigAccess(pci, buffer, within, write);
        }
        if (index > (ulong)VfioPciRegionIndex.Bar5)
        {
            return Errno.EINVAL.AsReturn();
        }
        PciBar? bar = pci.Function.Bar((int)index);
        if (bar is null || within >= bar.Size)
        {
            return Errno.EINVAL.AsReturn();
        }
        int count = (int)Math.Min((ulong)buffer.Length, bar.Size - within);
        Errno e = pci.SetupBarMap((int)index, faults);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        pci.MemoryLock.EnterReadLock();
        try
        {
            bool ok = write
                ? pci.Function.TryWriteBar((int)index, within, buffer[..count])
                : pci.Function.TryReadBar((int)index, within, buffer[..count]);
            return ok ? count : Errno.EIO.AsReturn();
        }
        finally
        {
            pci.MemoryLock.ExitReadLock();
        }
    }

    // A config write that clears the memory-enable bit zaps every BAR mmap under memory_lock for
    // write before the bit changes (vfio_basic_config_write, abafbc551fdd).
    private static long ConfigAccess(VfioPciDevice pci, Span<byte> buffer, ulong within, bool write)
    {
        if (within >= ConfigRegionSize)
        {
            return Errno.EINVAL.AsReturn();
        }
        int count = (int)Math.Min((ulong)buffer.Length, ConfigRegionSize - within);
        int inModel = (int)Math.Max(0, Math.Min(count, PciFunction.ConfigSize - (long)within));
        if (!write)
        {
            buffer[..count].Clear();
            if (inModel > 0)
            {
                pci.Function.ReadConfig((int)within, buffer[..inModel]);
            }
            return count;
        }
        if (inModel == 0)
        {
            return count;
        }
        pci.MemoryLock.EnterWriteLock();
        try
        {
            bool wasOn = pci.Function.MemoryEnabled;
            Span<byte> after = stackalloc byte[2];
            pci.Function.ReadConfig(PciFunction.CommandOffset, after);
            int cmdStart = PciFunction.CommandOffset;
            for (int i = 0; i < 2; i++)
            {
                long pos = cmdStart + i - (long)within;
                if (pos >= 0 && pos < inModel)
                {
                    after[i] = buffer[(int)pos];
                }
            }
            bool turnsOff = wasOn && (BinaryPrimitives.ReadUInt16LittleEndian(after) & (ushort)PciCommand.Memory) == 0;
            if (turnsOff)
            {
                pci.ZapBarsLocked();
            }
            pci.Function.WriteConfig((int)within, buffer[..inModel]);
            return count;
        }
        finally
        {
            pci.MemoryLock.ExitWriteLock();
        }
    }
}
