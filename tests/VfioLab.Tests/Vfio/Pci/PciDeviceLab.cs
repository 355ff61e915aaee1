using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>
/// A host with the device kinds the vfio-pci interrupt and config tests need, opened through the raw syscall surface:
/// QEMU's edu (1234:11e8, conventional PCI, one 1 MiB 32-bit BAR, no reset method, INTx and one MSI vector), a PCIe
/// NIC (FLR, INTx, 4 MSI vectors, 8 MSI-X vectors in BAR 2, a 64 KiB ROM), and a PCIe function without any interrupt
/// (no pin, no MSI). Helpers return the raw result (&gt;= 0 or -errno).
/// </summary>
internal sealed class PciDeviceLab
{
    public const ulong MiB = 1UL << 20;
    public const string Edu = "0000:00:03.0";
    public const string Nic = "0000:02:00.0";
    public const string Quiet = "0000:03:00.0";

    public PciDeviceLab(Action<LabHostBuilder>? more = null)
    {
        var b = new LabHostBuilder()
            .WithMemory(1UL << 30)
            .AddPciDevice("edu", Edu, d => d.Bar(0, 1 * MiB, is64Bit: false).Group(1).Ids(0x1234, 0x11e8, 0x00ff00)
                .Express(false).Interrupts(intx: true, msi: 1, msix: 0))
            .AddPciDevice("nic", Nic, d => d.Bar(0, 1 * MiB).Bar(2, 64 * 1024, is64Bit: false).Group(2)
                .Ids(0x8086, 0x10d3, 0x020000, 0x8086, 0xa01f, 3).Interrupts(intx: true, msi: 4, msix: 8, msixBar: 2).Rom(64 * 1024))
            .AddPciDevice("quiet", Quiet, d => d.Bar(0, 1 * MiB).Group(3).Interrupts(intx: false, msi: 0, msix: 0))
            .AddProcess("vmm", 1UL << 30);
        more?.Invoke(b);
        Host = b.Build();
        Process = Host.Process("vmm");
    }

    public LabHost Host { get; }

    public LabProcess Process { get; }

    public ISyscallSurface Sys => Process.Syscalls;

    /// <summary>Opens a container, the device's group, type1v2, and the device fd.</summary>
    public int Open(string name)
    {
        LabDevice device = Host.Devices.First(d => d.Address == name);
        int c = Sys.Open("/dev/vfio/vfio");
        int g = Sys.Open($"/dev/vfio/{device.IommuGroup}");
        Span<byte> arg = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(arg, c);
        Assert.Equal(0, Sys.Ioctl(g, VfioIoctl.GroupSetContainer, arg));
        Assert.Equal(0, Sys.Ioctl(c, VfioIoctl.SetIommu, VfioExtension.Type1v2Iommu));
        byte[] n = [.. Encoding.UTF8.GetBytes(name), 0];
        int d = (int)Sys.Ioctl(g, VfioIoctl.GroupGetDeviceFd, n);
        Assert.True(d >= 0, $"GET_DEVICE_FD: {ErrnoExtensions.FromReturn(d)}");
        return d;
    }

    public LabDevice Device(string name) => Host.Device(name);

    public long IrqInfo(int fd, uint index, out VfioIrqInfo info, uint argsz = VfioIrqInfo.SizeOf)
    {
        byte[] arg = new byte[VfioIrqInfo.SizeOf];
        new VfioIrqInfo { Argsz = argsz, Index = index }.Write(arg);
        long r = Sys.Ioctl(fd, VfioIoctl.DeviceGetIrqInfo, arg);
        VfioIrqInfo.TryRead(arg, out info);
        return r;
    }

    /// <summary>SET_IRQS with eventfds (DATA_EVENTFD) or no data, argsz covering the data unless given.</summary>
    public long SetIrqs(int fd, IrqSetFlags flags, uint index, uint start, uint count, byte[]? data = null, uint? argsz = null, int? buffer = null)
    {
        data ??= [];
        byte[] arg = new byte[buffer ?? VfioIrqSet.SizeOf + data.Length];
        new VfioIrqSet { Argsz = argsz ?? (uint)(VfioIrqSet.SizeOf + data.Length), Flags = flags, Index = index, Start = start, Count = count }
            .Write(arg);
        data.AsSpan(0, Math.Min(data.Length, arg.Length - VfioIrqSet.SizeOf)).CopyTo(arg.AsSpan(VfioIrqSet.SizeOf));
        return Sys.Ioctl(fd, VfioIoctl.DeviceSetIrqs, arg);
    }

    public long SetEventFds(int fd, uint index, uint start, params int[] eventFds) =>
        SetIrqs(fd, IrqSetFlags.DataEventfd | IrqSetFlags.ActionTrigger, index, start, (uint)eventFds.Length, Fds(eventFds));

    public static byte[] Fds(params int[] fds)
    {
        byte[] data = new byte[fds.Length * 4];
        for (int i = 0; i < fds.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(i * 4), fds[i]);
        }
        return data;
    }

    public long ReadConfig(int fd, int offset, Span<byte> destination) =>
        Sys.Pread(fd, destination, VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + (ulong)offset);

    public uint ReadConfig32(int fd, int offset)
    {
        Span<byte> b = stackalloc byte[4];
        Assert.Equal(4, ReadConfig(fd, offset, b));
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public ushort ReadConfig16(int fd, int offset)
    {
        Span<byte> b = stackalloc byte[2];
        Assert.Equal(2, ReadConfig(fd, offset, b));
        return BinaryPrimitives.ReadUInt16LittleEndian(b);
    }

    public long WriteConfig(int fd, int offset, ReadOnlySpan<byte> source) =>
        Sys.Pwrite(fd, source, VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + (ulong)offset);

    public long WriteConfig32(int fd, int offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return WriteConfig(fd, offset, b);
    }

    public long WriteConfig16(int fd, int offset, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        return WriteConfig(fd, offset, b);
    }

    /// <summary>VFIO_DEVICE_FEATURE with <paramref name="flags"/> (feature number | op bits) and a payload.</summary>
    public long Feature(int fd, uint flags, byte[]? payload = null, uint? argsz = null)
    {
        payload ??= [];
        byte[] arg = new byte[8 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, argsz ?? (uint)arg.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(arg.AsSpan(4), flags);
        payload.CopyTo(arg.AsSpan(8));
        return Sys.Ioctl(fd, VfioIoctl.DeviceFeature, arg);
    }
}
