using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Serve;

namespace VfioLab.Tests.Serve;

/// <summary>The kernel documentation's example flow, driven over the serve socket by this test process as the client:
/// its own memory is what the server reads and writes with process_vm_readv/writev.</summary>
public sealed class ServeFlowTests
{
    [Fact]
    public void Hello_AnswersVersionPageSizeAndTheRootTree()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Connect();
        WireClient.Answer a = session.Hello();
        Assert.Equal(0, a.Result);
        Assert.Equal(Wire.Hello, a.Op);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(a.Payload));
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32LittleEndian(a.Payload.AsSpan(4)));
        string root = Encoding.UTF8.GetString(a.Payload.AsSpan(8, a.Payload.Length - 9));
        Assert.Equal(0, a.Payload[^1]);
        Assert.Equal(f.Server.RootPath, root);
        Assert.True(File.Exists(Path.Combine(root, "dev/vfio/vfio")));
        Assert.True(File.Exists(Path.Combine(root, "dev/vfio/7")));
        Assert.Equal("../../../kernel/iommu_groups/7", new FileInfo(Path.Combine(root, "sys/devices/pci0000:00/0000:02:00.0/iommu_group")).LinkTarget);
        Assert.True(Directory.Exists(Path.Combine(root, "sys/bus/pci/devices/0000:02:00.0")));
        Assert.True(Directory.Exists(Path.Combine(root, "sys/kernel/iommu_groups/7/devices/0000:02:00.0")));
        Assert.Equal("vfio-pci", Path.GetFileName(new DirectoryInfo(Path.Combine(root, "sys/bus/pci/devices/0000:02:00.0/driver")).ResolveLinkTarget(true)!.FullName));
    }

    [Fact]
    public void KernelDocFlow_MapsRealMemoryAndReachesTheDevice()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        LabProcess me = f.Server.ProcessOf(Environment.ProcessId)!;
        Assert.NotNull(me);
        using WireClient container = f.OpenFile("/dev/vfio/vfio");
        Assert.Equal(VfioIoctl.ApiVersion, container.Ioctl(VfioIoctl.GetApiVersion, 0).Result);
        Assert.Equal(1, container.Ioctl(VfioIoctl.CheckExtension, (ulong)VfioExtension.Type1v2Iommu).Result);

        using WireClient group = f.OpenFile("/dev/vfio/7");
        using var status = new NativeBuffer(VfioGroupStatus.SizeOf);
        status.Write(0, BitConverter.GetBytes((uint)VfioGroupStatus.SizeOf));
        Assert.Equal(0, group.Ioctl(VfioIoctl.GroupGetStatus, status).Result);
        Assert.Equal((uint)GroupStatusFlags.Viable, status.U32(4));

        using var fdArg = new NativeBuffer(4);
        fdArg.Write(0, BitConverter.GetBytes(container.Fd));
        Assert.Equal(0, group.Ioctl(VfioIoctl.GroupSetContainer, fdArg).Result);
        Assert.Equal(0, group.Ioctl(VfioIoctl.GroupGetStatus, status).Result);
        Assert.Equal((uint)(GroupStatusFlags.Viable | GroupStatusFlags.ContainerSet), status.U32(4));
        Assert.Equal(0, container.Ioctl(VfioIoctl.SetIommu, (ulong)VfioExtension.Type1v2Iommu).Result);

        // IOMMU_GET_INFO with argsz of the fixed part only: the kernel says how much the capability chain needs.
        using var info = new NativeBuffer(4096);
        info.Write(0, BitConverter.GetBytes((uint)VfioIommuType1Info.SizeOf));
        Assert.Equal(0, container.Ioctl(VfioIoctl.IommuGetInfo, info).Result);
        uint needed = info.U32(0);
        Assert.True(needed > VfioIommuType1Info.SizeOf, $"argsz after GET_INFO: {needed}");
        Assert.Equal(0u, info.U32(VfioIommuType1Info.Offsets.CapOffset));
        info.Write(0, BitConverter.GetBytes(needed));
        Assert.Equal(0, container.Ioctl(VfioIoctl.IommuGetInfo, info).Result);
        var reply = VfioIommuType1InfoReply.Decode(info.Read(0, (int)needed));
        Assert.Null(reply.Error);
        Assert.NotEmpty(reply.IovaRanges!);

        // MAP_DMA of 2 MiB of this process's memory: the model pins it and charges locked_vm.
        using var ram = new NativeBuffer(2UL << 20, 2UL << 20);
        ulong lockedBefore = me.LockedVmBytes;
        using (NativeBuffer map = ServeFixture.MapDmaArg(ram.Address, 0x100000, 2UL << 20))
        {
            Assert.Equal(0, container.Ioctl(VfioIoctl.IommuMapDma, map).Result);
        }
        Assert.Equal(lockedBefore + (2UL << 20), me.LockedVmBytes);
        LabMapping mapping = Assert.Single(f.Host.Containers.Single().Mappings);
        Assert.Equal(ram.Address, mapping.Vaddr);
        Assert.Equal(0x100000UL, mapping.Iova);

        // The device: GET_DEVICE_FD hands a token, the new connection ATTACHes it.
        using WireClient device = f.DeviceFd(group);
        using var region = new NativeBuffer(4096);
        byte[] ri = new byte[VfioRegionInfo.SizeOf];
        new VfioRegionInfo { Argsz = VfioRegionInfo.SizeOf, Index = (uint)VfioPciRegionIndex.Config }.Write(ri);
        region.Write(0, ri);
        Assert.Equal(0, device.Ioctl(VfioIoctl.DeviceGetRegionInfo, region).Result);
        ulong configOffset = region.U64(VfioRegionInfo.Offsets.Offset);
        Assert.Equal(VfioPci.IndexToOffset((uint)VfioPciRegionIndex.Config), configOffset);
        Assert.True(region.U64(VfioRegionInfo.Offsets.Size) >= 256);

        using var config = new NativeBuffer(64);
        WireClient.Answer read = device.ReadWrite(Wire.Pread, config.Address, 4, configOffset);
        Assert.Equal(4, read.Result);
        Assert.NotEqual(0u, config.U32(0));

        Assert.Empty(f.Server.Violations);
        Assert.Empty(f.Host.CheckInvariants());
    }

    [Fact]
    public void RegionInfo_CapabilityChainIsCopiedWhole()
    {
        using var f = new ServeFixture(new LabHostBuilder()
            .WithMemory(256UL << 20)
            .AddPciDevice("nic", "0000:02:00.0", d => d.Bar(0, 1UL << 20).Group(7).Interrupts(intx: true, msi: 1, msix: 8, msixBar: 0))
            .Build());
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        using (WireClient device = f.DeviceFd(group))
        {
            using var region = new NativeBuffer(4096);
            byte[] ri = new byte[VfioRegionInfo.SizeOf];
            new VfioRegionInfo { Argsz = VfioRegionInfo.SizeOf, Index = (uint)VfioPciRegionIndex.Bar0 }.Write(ri);
            region.Write(0, ri);
            Assert.Equal(0, device.Ioctl(VfioIoctl.DeviceGetRegionInfo, region).Result);
            uint needed = region.U32(0);
            Assert.True(needed > VfioRegionInfo.SizeOf, $"argsz after REGION_INFO: {needed}");
            Assert.True((region.U32(4) & (uint)RegionInfoFlags.Caps) != 0);
            region.Write(0, BitConverter.GetBytes(needed));
            Assert.Equal(0, device.Ioctl(VfioIoctl.DeviceGetRegionInfo, region).Result);
            byte[] whole = region.Read(0, (int)needed);
            Assert.Null(VfioRegionInfoReply.Decode(whole).Error);
            var chain = VfioCapabilityChain.Walk(whole, region.U32(VfioRegionInfo.Offsets.CapOffset), VfioRegionInfo.SizeOf);
            Assert.Null(chain.Error);
            Assert.True(chain.TryFind((ushort)RegionInfoCapId.MsixMappable, out _), "BAR0 holding the MSI-X table reports MSIX_MAPPABLE");
        }
    }
}
