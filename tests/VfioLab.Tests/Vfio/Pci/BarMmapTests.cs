using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Pci;

namespace VfioLab.Tests.Vfio.Pci;

/// <summary>mmap of a vfio-pci BAR (vfio_pci_core_mmap and its fault handler): CPU accesses reach
/// the BAR while memory decode is on; clearing PCI_COMMAND_MEMORY through a config-space pwrite zaps
/// every BAR mmap and later faults SIGBUS until decode is on again.</summary>
public sealed class BarMmapTests
{
    internal static long WriteCommand(VfioTestHost t, int d, PciCommand command)
    {
        byte[] b = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)command);
        return t.Sys.Pwrite(d, b, VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + PciFunction.CommandOffset);
    }

    internal static ulong MapBar0(VfioTestHost t, int d)
    {
        long a = t.Sys.Mmap(0, VfioTestHost.GpuBar0Size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared, d,
            VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0));
        Assert.True(a > 0, $"mmap BAR0: {ErrnoExtensions.FromReturn(a)}");
        return (ulong)a;
    }

    [Fact]
    public void WriteMemory_ThroughBarMmap_ReachesBarAsSeenByPread()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(2, WriteCommand(t, d, PciCommand.Memory));
        ulong bar = MapBar0(t, d);

        Assert.Equal(0, t.Sys.WriteMemory(bar + 0x1000, [0xde, 0xad, 0xbe, 0xef]));

        byte[] viaPread = new byte[4];
        Assert.Equal(4, t.Sys.Pread(d, viaPread, VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0) + 0x1000));
        Assert.Equal([0xde, 0xad, 0xbe, 0xef], viaPread);
    }

    [Fact]
    public void ReadMemory_ThroughBarMmap_SeesPwrittenBarContents()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(2, WriteCommand(t, d, PciCommand.Memory));
        Assert.Equal(4, t.Sys.Pwrite(d, [1, 2, 3, 4], VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0) + 0x2000));
        ulong bar = MapBar0(t, d);

        byte[] viaCpu = new byte[4];
        Assert.Equal(0, t.Sys.ReadMemory(bar + 0x2000, viaCpu));
        Assert.Equal([1, 2, 3, 4], viaCpu);
    }

    [Fact]
    public void MemoryDisabled_ViaConfigPwrite_ZapsMmapAndAccessGetsSigbus()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(2, WriteCommand(t, d, PciCommand.Memory));
        ulong bar = MapBar0(t, d);
        Assert.Equal(0, t.Sys.ReadMemory(bar, new byte[8]));
        Assert.True(t.IsPresent(bar));

        Assert.Equal(2, WriteCommand(t, d, PciCommand.None));

        Assert.False(t.IsPresent(bar));
        Assert.False(t.Function(VfioTestHost.GpuName).MemoryEnabled);
        Assert.Equal(-(int)Errno.EIO, t.Sys.ReadMemory(bar, new byte[8]));
        Assert.Equal(-(int)Errno.EIO, t.Sys.WriteMemory(bar, new byte[8]));
        Assert.False(t.IsPresent(bar));
        Assert.Equal(-(long)Errno.EIO, t.Sys.Pread(d, new byte[4], VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0)));
    }

    [Fact]
    public void MemoryReenabled_AfterDisable_AccessWorksAgain()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(2, WriteCommand(t, d, PciCommand.Memory));
        ulong bar = MapBar0(t, d);
        Assert.Equal(2, WriteCommand(t, d, PciCommand.None));
        Assert.Equal(-(int)Errno.EIO, t.Sys.ReadMemory(bar, new byte[4]));

        Assert.Equal(2, WriteCommand(t, d, PciCommand.Memory));

        Assert.Equal(0, t.Sys.ReadMemory(bar, new byte[4]));
        Assert.True(t.IsPresent(bar));
    }

    [Fact]
    public void ConfigPread_CommandRegister_ReflectsPwrite()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(2, WriteCommand(t, d, PciCommand.Memory | PciCommand.Master));
        byte[] b = new byte[2];
        Assert.Equal(2, t.Sys.Pread(d, b, VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + PciFunction.CommandOffset));
        Assert.Equal((ushort)(PciCommand.Memory | PciCommand.Master), BinaryPrimitives.ReadUInt16LittleEndian(b));
    }

    [Fact]
    public void BarAccess_FreshlyOpenedDevice_MemoryDecodeEnabledByOpen()
    {
        // vfio_pci_core_enable calls pci_enable_device, whose pci_enable_resources sets
        // PCI_COMMAND_MEMORY for a function with memory BARs: a BAR is usable right after open.
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(4, t.Sys.Pread(d, new byte[4], VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0)));
        ulong bar = MapBar0(t, d);
        Assert.Equal(0, t.Sys.WriteMemory(bar, [1]));
        Assert.True(t.Function(VfioTestHost.GpuName).MemoryEnabled);
    }

    [Theory]
    [InlineData(VfioPciRegionIndex.Rom)]
    [InlineData(VfioPciRegionIndex.Config)]
    [InlineData(VfioPciRegionIndex.Bar1)]
    public void Mmap_RegionNotMmappable_ReturnsEINVAL(VfioPciRegionIndex index)
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(-(long)Errno.EINVAL, t.Sys.Mmap(0, 0x1000, MemoryProtection.Read, MmapFlags.Shared, d, VfioPci.IndexToOffset(index)));
    }

    [Fact]
    public void Mmap_PrivateMapping_ReturnsEINVAL()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(-(long)Errno.EINVAL, t.Sys.Mmap(0, 0x1000, MemoryProtection.Read, MmapFlags.Private, d, 0));
    }

    [Fact]
    public void Mmap_PastEndOfBar_ReturnsEINVAL()
    {
        var t = VfioTestHost.WithFake(out _);
        (_, _, int d) = t.OpenGpu();
        Assert.Equal(-(long)Errno.EINVAL, t.Sys.Mmap(0, VfioTestHost.GpuBar2Size + 0x1000, MemoryProtection.Read, MmapFlags.Shared, d,
            VfioPci.IndexToOffset(VfioPciRegionIndex.Bar2)));
    }
}
