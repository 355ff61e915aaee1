using System.Buffers.Binary;

namespace VfioLab.Pci;

/// <summary>
/// The config space a <see cref="PciDeviceDescription"/> describes, as the hardware holds it after power-on: a
/// type-0 header and a capability list packed from 0x40 in the order PM, MSI, PCI Express, MSI-X, each present or
/// not, each in a slot of its own (PM 0x10, MSI 0x20, PCI Express 0x40 bytes) right after the one before
/// (<see cref="CapabilityOffset"/>: with all four, 0x40, 0x50, 0x70, 0xb0; QEMU's edu, MSI alone, has it at 0x40, as
/// the real-kernel rig read), a Device Serial Number extended capability at 0x100 for a PCI Express function, and the
/// mask of bits software can write (everything else is read-only).
/// Register offsets and bit values are <c>include/uapi/linux/pci_regs.h</c>'s.
/// </summary>
internal sealed class PciConfigImage
{
    /// <summary>PCI_CFG_SPACE_SIZE: conventional config space.</summary>
    public const int ConventionalSize = 256;

    /// <summary>PCI_CFG_SPACE_EXP_SIZE: PCI Express config space.</summary>
    public const int ExpressSize = 4096;

    /// <summary>PCI_STD_HEADER_SIZEOF.</summary>
    public const int HeaderSize = 0x40;

    public const int VendorId = 0x00;
    public const int Command = 0x04;
    public const int Status = 0x06;
    public const int Revision = 0x08;
    public const int ClassProg = 0x09;
    public const int CacheLineSize = 0x0c;
    public const int LatencyTimer = 0x0d;
    public const int HeaderType = 0x0e;
    public const int Bist = 0x0f;
    public const int Bar0 = 0x10;
    public const int SubsystemVendorId = 0x2c;
    public const int RomAddress = 0x30;
    public const int CapabilityList = 0x34;
    public const int InterruptLine = 0x3c;
    public const int InterruptPin = 0x3d;

    /// <summary>PCI_STATUS_CAP_LIST.</summary>
    public const ushort StatusCapList = 0x10;

    /// <summary>PCI_ROM_ADDRESS_ENABLE.</summary>
    public const uint RomEnable = 0x1;

    public const byte CapIdPm = 0x01;
    public const byte CapIdMsi = 0x05;
    public const byte CapIdExp = 0x10;
    public const byte CapIdMsix = 0x11;

    /// <summary>PCI_EXT_CAP_ID_DSN.</summary>
    public const ushort ExtCapIdDsn = 0x03;

    /// <summary>Where the capability list starts: right after the standard header.</summary>
    public const int FirstCapability = HeaderSize;

    /// <summary>The slot each capability takes before the next (its length rounded up, room for MSI's per-vector
    /// mask registers).</summary>
    private const int PmSlot = 0x10;
    private const int MsiSlot = 0x20;
    private const int ExpSlot = 0x40;

    /// <summary>PCI_PM_SIZEOF.</summary>
    public const int PmLength = 8;

    /// <summary>A 64-bit MSI capability without per-vector masking.</summary>
    public const int MsiLength = 14;

    /// <summary>PCI_CAP_EXP_ENDPOINT_SIZEOF_V2.</summary>
    public const int ExpLength = 0x3c;

    /// <summary>PCI_CAP_MSIX_SIZEOF.</summary>
    public const int MsixLength = 12;

    /// <summary>PCI_EXT_CAP_DSN_SIZEOF.</summary>
    public const int DsnLength = 12;

    /// <summary>PCI_PM_CTRL, PCI_MSI_FLAGS, PCI_MSIX_FLAGS, PCI_EXP_DEVCAP, PCI_EXP_DEVCTL, PCI_EXP_DEVCTL2 (within the capability).</summary>
    public const int PmCtrl = 4;
    public const int MsiFlags = 2;
    public const int MsiAddressLo = 4;
    public const int MsiAddressHi = 8;
    public const int MsiData64 = 12;
    public const int MsixFlags = 2;
    public const int MsixTable = 4;
    public const int MsixPba = 8;
    public const int ExpDevCap = 4;
    public const int ExpDevCtl = 8;
    public const int ExpDevCtl2 = 0x28;

    /// <summary>PCI_PM_CTRL_STATE_MASK and PCI_PM_CTRL_NO_SOFT_RESET.</summary>
    public const ushort PmCtrlStateMask = 0x3;
    public const ushort PmCtrlNoSoftReset = 0x8;

    /// <summary>PCI_MSI_FLAGS_ENABLE, _QMASK (Multiple Message Capable), _QSIZE (Multiple Message Enable), _64BIT.</summary>
    public const ushort MsiFlagsEnable = 0x1;
    public const ushort MsiFlagsQmask = 0xe;
    public const ushort MsiFlagsQsize = 0x70;
    public const ushort MsiFlags64Bit = 0x80;

    /// <summary>PCI_MSIX_FLAGS_QSIZE, _MASKALL, _ENABLE.</summary>
    public const ushort MsixFlagsQsize = 0x7ff;
    public const ushort MsixFlagsMaskAll = 0x4000;
    public const ushort MsixFlagsEnable = 0x8000;

    /// <summary>PCI_EXP_DEVCAP_FLR.</summary>
    public const uint ExpDevCapFlr = 0x1000_0000;

    /// <summary>PCI_EXP_DEVCTL_BCR_FLR, _PAYLOAD, _READRQ, _PHANTOM; PCI_EXP_DEVCTL2_ARI.</summary>
    public const ushort ExpDevCtlFlr = 0x8000;
    public const ushort ExpDevCtlPayload = 0x00e0;
    public const ushort ExpDevCtlReadRq = 0x7000;
    public const ushort ExpDevCtlPhantom = 0x0200;
    public const ushort ExpDevCtl2Ari = 0x0020;

    /// <summary>The offset of capability <paramref name="capId"/> (<see cref="CapIdPm"/>, <see cref="CapIdMsi"/>,
    /// <see cref="CapIdExp"/>, <see cref="CapIdMsix"/>) in the config space of <paramref name="d"/>, or 0 when the
    /// function has none: the capabilities present follow one another from 0x40 in that order, each in its slot.</summary>
    public static int CapabilityOffset(PciDeviceDescription d, byte capId)
    {
        int at = FirstCapability;
        if (capId == CapIdPm)
        {
            return d.PowerManagement ? at : 0;
        }
        at += d.PowerManagement ? PmSlot : 0;
        if (capId == CapIdMsi)
        {
            return d.MsiVectors > 0 ? at : 0;
        }
        at += d.MsiVectors > 0 ? MsiSlot : 0;
        if (capId == CapIdExp)
        {
            return d.Express ? at : 0;
        }
        at += d.Express ? ExpSlot : 0;
        return capId == CapIdMsix && d.MsixVectors > 0 ? at : 0;
    }

    private PciConfigImage(byte[] bytes, byte[] writable)
    {
        Bytes = bytes;
        Writable = writable;
    }

    /// <summary>The config space after power-on.</summary>
    public byte[] Bytes { get; }

    /// <summary>Per byte, the bits software can change; the rest are read-only (hardware-initialised).</summary>
    public byte[] Writable { get; }

    /// <summary>Builds the config space of a function with <paramref name="bars"/> placed and an optional ROM at
    /// <paramref name="romBase"/>.</summary>
    public static PciConfigImage Build(PciDeviceDescription d, IReadOnlyList<PciBar> bars, ulong romBase, PciAddress address)
    {
        int size = d.Express ? ExpressSize : ConventionalSize;
        byte[] c = new byte[size];
        byte[] w = new byte[size];
        Span<byte> s = c;
        BinaryPrimitives.WriteUInt16LittleEndian(s[VendorId..], d.VendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(s[(VendorId + 2)..], d.DeviceId);
        c[Revision] = d.Revision;
        c[ClassProg] = (byte)d.ClassCode;
        c[ClassProg + 1] = (byte)(d.ClassCode >> 8);
        c[ClassProg + 2] = (byte)(d.ClassCode >> 16);
        BinaryPrimitives.WriteUInt16LittleEndian(s[SubsystemVendorId..], d.SubsystemVendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(s[(SubsystemVendorId + 2)..], d.SubsystemId);
        c[InterruptPin] = d.IntxPin ? (byte)1 : (byte)0;
        foreach (PciBar bar in bars)
        {
            uint low = (uint)(bar.Base.Value & 0xffff_fff0) | (bar.Is64Bit ? 0x4u : 0u) | (bar.Prefetchable ? 0x8u : 0u);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(Bar0 + (4 * bar.Index))..], low);
            if (bar.Is64Bit && bar.Index < 5)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(s[(Bar0 + (4 * (bar.Index + 1)))..], (uint)(bar.Base.Value >> 32));
            }
        }
        if (d.RomSize != 0)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s[RomAddress..], (uint)romBase);
            w[RomAddress] = (byte)RomEnable;
        }
        // Command: I/O, memory, master, special, MWI, palette, parity, wait, SERR, fast b2b, INTx disable.
        w[Command] = 0xff;
        w[Command + 1] = 0x07;
        w[CacheLineSize] = 0xff;
        w[LatencyTimer] = 0xff;
        w[InterruptLine] = 0xff;

        List<(byte Id, int Offset)> caps = [];
        int pmAt = CapabilityOffset(d, CapIdPm), msiAt = CapabilityOffset(d, CapIdMsi);
        int expAt = CapabilityOffset(d, CapIdExp), msixAt = CapabilityOffset(d, CapIdMsix);
        if (d.PowerManagement)
        {
            caps.Add((CapIdPm, pmAt));
            BinaryPrimitives.WriteUInt16LittleEndian(s[(pmAt + 2)..], 0x0003); // PMC: version 3
            // No_Soft_Reset set means a D3hot->D0 transition keeps state, so the PCI core cannot use it as a reset.
            ushort pmcsr = d.Reset == PciResetMethod.Pm ? (ushort)0 : PmCtrlNoSoftReset;
            BinaryPrimitives.WriteUInt16LittleEndian(s[(pmAt + PmCtrl)..], pmcsr);
            w[pmAt + PmCtrl] = (byte)PmCtrlStateMask;
            w[pmAt + PmCtrl + 1] = 0x01; // PME_En
        }
        if (d.MsiVectors > 0)
        {
            caps.Add((CapIdMsi, msiAt));
            int log2 = System.Numerics.BitOperations.Log2((uint)d.MsiVectors);
            BinaryPrimitives.WriteUInt16LittleEndian(s[(msiAt + MsiFlags)..], (ushort)(MsiFlags64Bit | (log2 << 1)));
            w[msiAt + MsiFlags] = (byte)(MsiFlagsEnable | MsiFlagsQsize);
            w[msiAt + MsiAddressLo] = 0xfc;
            for (int i = 1; i < 8; i++)
            {
                w[msiAt + MsiAddressLo + i] = 0xff; // address low (bits 31:2) and high
            }
            w[msiAt + MsiData64] = 0xff;
            w[msiAt + MsiData64 + 1] = 0xff;
        }
        if (d.Express)
        {
            caps.Add((CapIdExp, expAt));
            BinaryPrimitives.WriteUInt16LittleEndian(s[(expAt + 2)..], 0x0002); // version 2, PCI Express endpoint
            uint devcap = 0x1 | (d.Reset == PciResetMethod.Flr ? ExpDevCapFlr : 0); // 256-byte max payload supported
            BinaryPrimitives.WriteUInt32LittleEndian(s[(expAt + ExpDevCap)..], devcap);
            BinaryPrimitives.WriteUInt16LittleEndian(s[(expAt + ExpDevCtl)..], 0x2810); // max read request 512 bytes, relaxed ordering on
            w[expAt + ExpDevCtl] = 0xff;
            w[expAt + ExpDevCtl + 1] = 0x7f; // the FLR bit starts a reset rather than storing
            w[expAt + ExpDevCtl2] = 0xff;
            w[expAt + ExpDevCtl2 + 1] = 0xff;
        }
        if (d.MsixVectors > 0)
        {
            caps.Add((CapIdMsix, msixAt));
            BinaryPrimitives.WriteUInt16LittleEndian(s[(msixAt + MsixFlags)..], (ushort)(d.MsixVectors - 1));
            BinaryPrimitives.WriteUInt32LittleEndian(s[(msixAt + MsixTable)..], (uint)d.MsixBar);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(msixAt + MsixPba)..], (uint)d.MsixPbaOffset | (uint)d.MsixBar);
            w[msixAt + MsixFlags + 1] = (byte)((MsixFlagsEnable | MsixFlagsMaskAll) >> 8);
        }
        if (caps.Count > 0)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(s[Status..], StatusCapList);
            c[CapabilityList] = (byte)caps[0].Offset;
            for (int i = 0; i < caps.Count; i++)
            {
                c[caps[i].Offset] = caps[i].Id;
                c[caps[i].Offset + 1] = i + 1 < caps.Count ? (byte)caps[i + 1].Offset : (byte)0;
            }
        }
        if (d.Express)
        {
            // Device Serial Number, version 1, last in the chain; the serial is made from the address.
            BinaryPrimitives.WriteUInt32LittleEndian(s[ConventionalSize..], ExtCapIdDsn | (1u << 16));
            ulong serial = 0x5646_494f_0000_0000UL | ((ulong)(uint)address.Domain << 16) | ((ulong)(uint)address.Bus << 8) | ((ulong)(uint)address.Device << 3) | (uint)address.Function;
            BinaryPrimitives.WriteUInt64LittleEndian(s[(ConventionalSize + 4)..], serial);
        }
        return new PciConfigImage(c, w);
    }
}
