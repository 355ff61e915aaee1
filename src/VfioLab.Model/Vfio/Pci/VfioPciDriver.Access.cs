using VfioLab.Abi;
using VfioLab.Diagnostics;
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

    // vfio_pci_rw: the region index selects config space, a BAR or the ROM (read-only, EINVAL on write); VGA is not
    // modelled (no device is VGA) and later indexes do not exist (EINVAL).
    private static long Access(VfioPciDevice pci, Diagnostics.FaultInjector faults, Span<byte> buffer, ulong offset, bool write)
    {
        ulong index = VfioPciDevice.IndexOf(offset);
        ulong within = VfioPciDevice.OffsetWithin(offset);
        if (index >= VfioPci.NumRegions)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_rw", "offset 0x{0:x} names region {1}, past the device's {2} regions", offset, index, (ulong)VfioPci.NumRegions);
        }
        if (index == (ulong)VfioPciRegionIndex.Config)
        {
            return ConfigAccess(pci, buffer, within, write);
        }
        if (index == (ulong)VfioPciRegionIndex.Rom)
        {
            return write ? Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_bar_rw", "the ROM region is read-only") : RomRead(pci, buffer, within);
        }
        if (index > (ulong)VfioPciRegionIndex.Bar5)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_rw", "region {0} (VGA or a device-specific one) is not readable on this device", index);
        }
        PciBar? bar = pci.Function.Bar((int)index);
        if (bar is null || within >= bar.Size)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_bar_rw", bar is null
                ? "BAR {0} is not implemented"
                : "offset 0x{1:x} is past the end of BAR {0} (0x{2:x} bytes)", index, within, bar?.Size ?? 0);
        }
        int count = (int)Math.Min((ulong)buffer.Length, bar.Size - within);
        Errno e = pci.SetupBarMap((int)index, faults);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        // vfio_pci_bar_rw: the MSI-X table is excluded from the BAR holding it: reads there see all ones and writes
        // are dropped (the host owns the table); the PBA is not excluded.
        (ulong xStart, ulong xEnd) = (int)index == pci.MsixBar ? (0UL, pci.Function.Description.MsixTableSize) : (0UL, 0UL);
        pci.MemoryLock.EnterReadLock();
        try
        {
            if (!pci.Function.DecodesMemory)
            {
                return Refusals.RefuseReturn(Errno.EIO, "vfio_pci_core_do_io_rw", "BAR {0}: memory decode is off in the command register", index); // the memory test
            }
            int done = 0;
            while (done < count)
            {
                ulong at = within + (ulong)done;
                bool excluded = at >= xStart && at < xEnd;
                ulong stop = excluded ? xEnd : at < xStart ? xStart : within + (ulong)count;
                int n = (int)Math.Min((ulong)(count - done), stop - at);
                Span<byte> piece = buffer.Slice(done, n);
                if (excluded)
                {
                    if (!write)
                    {
                        piece.Fill(0xff);
                    }
                }
                else if (!(write ? pci.Function.TryWriteBar((int)index, at, piece) : pci.Function.TryReadBar((int)index, at, piece)))
                {
                    return Refusals.RefuseReturn(Errno.EIO, "vfio_pci_core_do_io_rw", "BAR {0} at 0x{1:x} did not answer the access", index, at);
                }
                done += n;
            }
            return count;
        }
        finally
        {
            pci.MemoryLock.ExitReadLock();
        }
    }

    // vfio_pci_config_rw through the virtual config space; writes hold memory_lock for write, since a command write
    // can disable memory decode (and zaps BAR mmaps first) and a PCIe FLR write resets the function.
    private static long ConfigAccess(VfioPciDevice pci, Span<byte> buffer, ulong within, bool write)
    {
        if (write)
        {
            pci.MemoryLock.EnterWriteLock();
        }
        else
        {
            pci.MemoryLock.EnterReadLock();
        }
        try
        {
            pci.Config ??= new VfioPciConfig(pci);
            return pci.Config.Access(buffer, within, write);
        }
        finally
        {
            if (write)
            {
                pci.MemoryLock.ExitWriteLock();
            }
            else
            {
                pci.MemoryLock.ExitReadLock();
            }
        }
    }

    // vfio_pci_bar_rw for the ROM: EINVAL without a ROM or past its BAR; pci_map_rom finds the image, and bytes past
    // the image read as all ones; the read needs memory decode (EIO).
    private static long RomRead(VfioPciDevice pci, Span<byte> buffer, ulong within)
    {
        ulong size = pci.Function.Description.RomSize;
        if (size == 0 || within >= size)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_bar_rw", size == 0 ? "the device has no ROM" : "offset 0x{0:x} is past the ROM's 0x{1:x} bytes", within, size);
        }
        int count = (int)Math.Min((ulong)buffer.Length, size - within);
        pci.MemoryLock.EnterReadLock();
        try
        {
            if (!pci.Function.DecodesMemory)
            {
                return Refusals.RefuseReturn(Errno.EIO, "vfio_pci_bar_rw", "the ROM cannot be read while memory decode is off");
            }
            ulong image = pci.Function.RomImageSize;
            int inImage = within < image ? (int)Math.Min((ulong)count, image - within) : 0;
            pci.Function.ReadRom(within, buffer[..inImage]);
            buffer[inImage..count].Fill(0xff);
            return count;
        }
        finally
        {
            pci.MemoryLock.ExitReadLock();
        }
    }
}
