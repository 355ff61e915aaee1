using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Pci;
using static VfioLab.Pci.PciConfigImage;

namespace VfioLab.Vfio.Pci;

/// <summary>
/// vfio-pci's virtualized config space for one open device (drivers/vfio/pci/vfio_pci_config.c): the virtual copy
/// (<c>vconfig</c>) filled from the hardware at open, the map of which capability owns each byte, and per byte the
/// bits that are virtual and the bits the user may write. Reads mix virtual and physical bits; writes go to the
/// virtual copy, the hardware, or nowhere. Virtualized as Linux does: ids, the capability pointers and INTx pin read
/// from the copy; BARs and the ROM BAR are virtual and answer sizing (all-ones written, the size mask read back);
/// the command register goes to the hardware (clearing memory decode zaps every BAR mmap first) with INTx disable
/// emulated; MSI's enable bit is virtual unless MSI was enabled through SET_IRQS and its vector count reads as
/// <c>msi_qmax</c>; MSI-X and the Device Serial Number read through and drop writes; PCIe device control's FLR bit
/// starts a reset; unassigned bytes go raw to the hardware.
/// </summary>
/// <remarks>Not synchronised itself: every access runs under the device's <c>memory_lock</c> taken by the caller
/// (for write on config writes). Never change after construction: the map and the permission bytes.</remarks>
internal sealed class VfioPciConfig
{
    private const byte Unassigned = 0xff;
    private const byte Basic = 0;

    private readonly VfioPciDevice _pci;
    private readonly byte[] _vconfig;
    private readonly byte[] _map;
    private readonly short[] _capStart;
    private readonly byte[] _virt;
    private readonly byte[] _write;
    private bool _barDirty = true;

    /// <summary>vfio_config_init: fills the copy from the hardware and walks the capability chains.</summary>
    public VfioPciConfig(VfioPciDevice pci)
    {
        _pci = pci;
        PciFunction f = pci.Function;
        int size = f.ConfigSize;
        _vconfig = new byte[size];
        _map = new byte[size];
        _capStart = new short[size];
        _virt = new byte[size];
        _write = new byte[size];
        _map.AsSpan(HeaderSize).Fill(Unassigned);
        f.ReadConfig(0, _vconfig.AsSpan(0, HeaderSize));
        BasicPerms();
        byte pos = (f.ReadConfigWord(Status) & StatusCapList) != 0 ? f.ReadConfigByte(CapabilityList) : (byte)0;
        for (int loops = (ConventionalSize - HeaderSize) / 4; pos != 0 && loops > 0; loops--)
        {
            byte id = f.ReadConfigByte(pos);
            byte next = f.ReadConfigByte(pos + 1);
            int len = id switch
            {
                CapIdPm => PmLength,
                CapIdMsi => (f.ReadConfigWord(pos + MsiFlags) & MsiFlags64Bit) != 0 ? 14 : 10,
                CapIdExp => ExpLength,
                CapIdMsix => MsixLength,
                _ => 0,
            };
            if (len > 0)
            {
                Claim(pos, len, id);
                _virt[pos + 1] = 0xff; // the next pointer is virtual, so a capability could be hidden
                CapPerms(id, pos, f);
            }
            pos = next;
        }
        if (size > ConventionalSize && f.ReadConfigDword(ConventionalSize) is uint header && header != 0)
        {
            // Extended capabilities: the model's functions have one, the Device Serial Number (read-only).
            if ((header & 0xffff) == ExtCapIdDsn)
            {
                Claim(ConventionalSize, DsnLength, (byte)ExtCapIdDsn);
            }
        }
    }

    /// <summary>vfio_pci_config_rw: the access is cut into aligned chunks of at most one dword that stay within one
    /// capability; EFAULT when any of it lies past <c>cfg_size</c> (before anything is read or written).</summary>
    public long Access(Span<byte> buffer, ulong pos, bool write)
    {
        int size = _vconfig.Length;
        long done = 0;
        while (done < buffer.Length)
        {
            ulong at = pos + (ulong)done;
            int left = buffer.Length - (int)done;
            if (at >= (ulong)size || (ulong)left > (ulong)size - at)
            {
                return Refusals.RefuseReturn(Errno.EFAULT, "vfio_pci_config_rw", "config space [0x{0:x}, +0x{1:x}) passes its end at 0x{2:x}", at, (ulong)left, (ulong)size);
            }
            int p = (int)at;
            int chunk = 1;
            while ((p + chunk) % 4 != 0 && p + chunk < size && _map[p + chunk] == _map[p])
            {
                chunk++;
            }
            chunk = Math.Min(chunk, left);
            chunk = chunk >= 4 && p % 4 == 0 ? 4 : chunk >= 2 && p % 2 == 0 ? 2 : 1;
            Span<byte> piece = buffer.Slice((int)done, chunk);
            if (write)
            {
                WriteChunk(p, piece);
            }
            else
            {
                ReadChunk(p, piece);
            }
            done += chunk;
        }
        return done;
    }

    private void ReadChunk(int pos, Span<byte> val)
    {
        byte cap = _map[pos];
        int offset = pos - _capStart[pos];
        if (cap == Unassigned)
        {
            _pci.Function.ReadConfig(pos, val);
            return;
        }
        if (pos < HeaderSize)
        {
            if (IsBar(pos) && _barDirty)
            {
                BarFixup();
            }
            DefaultRead(pos, val);
            return;
        }
        if (pos >= ConventionalSize || cap == CapIdMsix)
        {
            // vfio_direct_config_read: hardware, but the capability header (id and next) comes from the copy.
            _pci.Function.ReadConfig(pos, val);
            int headerBytes = pos >= ConventionalSize ? 4 : 2;
            for (int i = 0; i < val.Length && offset + i < headerBytes; i++)
            {
                val[i] = _vconfig[pos + i];
            }
            return;
        }
        if (cap == CapIdMsi && offset <= MsiFlags && offset + val.Length >= MsiFlags)
        {
            int flags = _capStart[pos] + MsiFlags;
            ushort v = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_vconfig.AsSpan(flags)) & ~MsiFlagsQmask);
            BinaryPrimitives.WriteUInt16LittleEndian(_vconfig.AsSpan(flags), (ushort)(v | (_pci.Irqs.MsiQmax << 1)));
        }
        DefaultRead(pos, val);
    }

    private void WriteChunk(int pos, Span<byte> val)
    {
        byte cap = _map[pos];
        int start = _capStart[pos];
        int offset = pos - start;
        if (cap == Unassigned)
        {
            _pci.Function.WriteConfig(pos, val);
            return;
        }
        if (pos < HeaderSize)
        {
            BasicWrite(pos, val);
            return;
        }
        if (pos >= ConventionalSize || cap == CapIdMsix)
        {
            return; // no write function: dropped, the byte count still reported
        }
        DefaultWrite(pos, val);
        switch (cap)
        {
            case CapIdPm when offset == PmCtrl:
                // The power state bits are read-only to the user; vfio_pm_config_write sets the state itself.
                ushort state = (ushort)(val[0] & PmCtrlStateMask);
                _pci.Function.UpdateConfigWord(start + PmCtrl, PmCtrlStateMask, set: false);
                _pci.Function.UpdateConfigWord(start + PmCtrl, state, set: true);
                break;
            case CapIdMsi when offset <= MsiFlags && offset + val.Length >= MsiFlags:
                MsiFlagsWrite(start + MsiFlags);
                break;
            case CapIdExp when offset <= ExpDevCtl + 1 && offset + val.Length > ExpDevCtl:
                ExpDevCtlWrite(start);
                break;
        }
    }

    private void BasicWrite(int pos, Span<byte> val)
    {
        bool command = pos == Command;
        if (command)
        {
            bool newMem = (val[0] & (byte)PciCommand.Memory) != 0;
            // vfio_basic_config_write: a write without memory enable zaps every BAR mmap before the hardware sees it.
            if (!newMem)
            {
                _pci.ZapBarsLocked();
            }
        }
        DefaultWrite(pos, val);
        if (command)
        {
            ushort mask = (ushort)(PciCommand.Memory | PciCommand.Io);
            ushort virt = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_vconfig.AsSpan(Command)) & ~mask);
            BinaryPrimitives.WriteUInt16LittleEndian(_vconfig.AsSpan(Command), (ushort)(virt | (val[0] & mask)));
        }
        if (pos is Command or Command + 1)
        {
            bool disabled = (BinaryPrimitives.ReadUInt16LittleEndian(_vconfig.AsSpan(Command)) & (ushort)PciCommand.IntxDisable) != 0;
            _pci.Irqs.SetVirqDisabled(disabled);
        }
        if (IsBar(pos))
        {
            _barDirty = true;
        }
    }

    // vfio_msi_config_write: enable stays off unless MSI was enabled through SET_IRQS; the message-enable field is
    // clamped to msi_qmax; the result goes to the copy and to the hardware.
    private void MsiFlagsWrite(int at)
    {
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(_vconfig.AsSpan(at));
        if (_pci.Irqs.Mode != VfioPciIrqMode.Msi)
        {
            flags = (ushort)(flags & ~MsiFlagsEnable);
        }
        if (((flags & MsiFlagsQsize) >> 4) > _pci.Irqs.MsiQmax)
        {
            flags = (ushort)((flags & ~MsiFlagsQsize) | (_pci.Irqs.MsiQmax << 4));
        }
        BinaryPrimitives.WriteUInt16LittleEndian(_vconfig.AsSpan(at), flags);
        _pci.Function.WriteConfigWord(at, flags);
    }

    // vfio_exp_config_write: the virtual FLR bit always reads 0; when set and the function advertises FLR, the
    // function is reset (zap, save, reset, restore).
    private void ExpDevCtlWrite(int start)
    {
        int ctl = start + ExpDevCtl;
        ushort value = BinaryPrimitives.ReadUInt16LittleEndian(_vconfig.AsSpan(ctl));
        if ((value & ExpDevCtlFlr) == 0)
        {
            return;
        }
        BinaryPrimitives.WriteUInt16LittleEndian(_vconfig.AsSpan(ctl), (ushort)(value & ~ExpDevCtlFlr));
        if ((_pci.Function.ReadConfigDword(start + ExpDevCap) & ExpDevCapFlr) != 0)
        {
            VfioPciDriver.ResetLocked(_pci);
        }
    }

    // vfio_bar_fixup: the virtual BARs keep only the bits above their size and the flags of the resource, which is
    // how writing all-ones reveals the size; a BAR the function lacks reads 0.
    private void BarFixup()
    {
        Span<byte> v = _vconfig;
        for (int i = 0; i < 6; i++)
        {
            PciBar? bar = _pci.Function.Bar(i);
            int at = Bar0 + (4 * i);
            if (bar is null)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(v[at..], 0);
                continue;
            }
            ulong mask = ~(bar.Size - 1);
            uint flags = (bar.Is64Bit ? 0x4u : 0u) | (bar.Prefetchable ? 0x8u : 0u);
            BinaryPrimitives.WriteUInt32LittleEndian(v[at..], (BinaryPrimitives.ReadUInt32LittleEndian(v[at..]) & (uint)mask) | flags);
            if (bar.Is64Bit && i < 5)
            {
                i++;
                at += 4;
                BinaryPrimitives.WriteUInt32LittleEndian(v[at..], BinaryPrimitives.ReadUInt32LittleEndian(v[at..]) & (uint)(mask >> 32));
            }
        }
        ulong rom = _pci.Function.Description.RomSize;
        uint romValue = rom == 0 ? 0 : BinaryPrimitives.ReadUInt32LittleEndian(v[RomAddress..]) & (uint)(~(rom - 1) | RomEnable);
        BinaryPrimitives.WriteUInt32LittleEndian(v[RomAddress..], romValue);
        _barDirty = false;
    }

    private void DefaultRead(int pos, Span<byte> val)
    {
        Span<byte> phys = stackalloc byte[val.Length];
        bool anyPhysical = false;
        for (int i = 0; i < val.Length; i++)
        {
            anyPhysical |= _virt[pos + i] != 0xff;
        }
        if (anyPhysical)
        {
            _pci.Function.ReadConfig(pos, phys);
        }
        for (int i = 0; i < val.Length; i++)
        {
            byte virt = _virt[pos + i];
            val[i] = (byte)((phys[i] & ~virt) | (_vconfig[pos + i] & virt));
        }
    }

    private void DefaultWrite(int pos, ReadOnlySpan<byte> val)
    {
        Span<byte> phys = stackalloc byte[val.Length];
        bool anyPhysical = false;
        for (int i = 0; i < val.Length; i++)
        {
            byte write = _write[pos + i];
            byte virt = _virt[pos + i];
            _vconfig[pos + i] = (byte)((_vconfig[pos + i] & ~(write & virt)) | (val[i] & write & virt));
            anyPhysical |= (write & ~virt) != 0;
        }
        if (!anyPhysical)
        {
            return;
        }
        _pci.Function.ReadConfig(pos, phys);
        for (int i = 0; i < val.Length; i++)
        {
            byte mask = (byte)(_write[pos + i] & ~_virt[pos + i]);
            phys[i] = (byte)((phys[i] & ~mask) | (val[i] & mask));
        }
        _pci.Function.WriteConfig(pos, phys);
    }

    private void Claim(int pos, int len, byte id)
    {
        len = Math.Min(len, _vconfig.Length - pos);
        for (int i = 0; i < len; i++)
        {
            _map[pos + i] = id;
            _capStart[pos + i] = (short)pos;
        }
        _pci.Function.ReadConfig(pos, _vconfig.AsSpan(pos, len));
    }

    private void BasicPerms()
    {
        Set(VendorId, 4, virt: 0xffff_ffff, write: 0);                 // vendor and device ids
        Set(Command, 2, virt: (ushort)PciCommand.IntxDisable, write: 0xffff);
        Set(Status, 2, virt: StatusCapList, write: 0);
        Set(CacheLineSize, 1, virt: 0, write: 0xff);
        Set(LatencyTimer, 1, virt: 0, write: 0xff);
        Set(Bist, 1, virt: 0, write: 0xff);
        Set(Bar0, 24, virt: 0xffff_ffff, write: 0xffff_ffff);
        Set(RomAddress, 4, virt: 0xffff_ffff, write: 0xffff_ffff);
        Set(CapabilityList, 1, virt: 0xff, write: 0);
        Set(InterruptLine, 1, virt: 0xff, write: 0xff);
        Set(InterruptPin, 1, virt: 0xff, write: 0);
    }

    private void CapPerms(byte id, int pos, PciFunction f)
    {
        switch (id)
        {
            case CapIdPm:
                Set(pos + PmCtrl, 4, virt: 0, write: ~(uint)PmCtrlStateMask);
                break;
            case CapIdMsi:
                Set(pos + MsiFlags, 1, virt: 0xff, write: 0xff);
                Set(pos + MsiAddressLo, 4, virt: 0xffff_ffff, write: 0xffff_ffff);
                if ((f.ReadConfigWord(pos + MsiFlags) & MsiFlags64Bit) != 0)
                {
                    Set(pos + MsiAddressHi, 4, virt: 0xffff_ffff, write: 0xffff_ffff);
                    Set(pos + MsiData64, 2, virt: 0xffff, write: 0xffff);
                }
                else
                {
                    Set(pos + MsiAddressHi, 2, virt: 0xffff, write: 0xffff);
                }
                break;
            case CapIdExp:
                Set(pos + ExpDevCtl, 2, virt: (uint)(ExpDevCtlFlr | ExpDevCtlPayload | ExpDevCtlReadRq), write: unchecked((ushort)~ExpDevCtlPhantom));
                Set(pos + ExpDevCtl2, 2, virt: 0, write: unchecked((ushort)~ExpDevCtl2Ari));
                break;
        }
    }

    private void Set(int pos, int length, uint virt, uint write)
    {
        for (int i = 0; i < length; i++)
        {
            int shift = 8 * (i % 4);
            _virt[pos + i] = (byte)(virt >> shift);
            _write[pos + i] = (byte)(write >> shift);
        }
    }

    private static bool IsBar(int pos) => pos is >= Bar0 and < Bar0 + 24 or >= RomAddress and < RomAddress + 4;
}
