using System.Buffers.Binary;
using System.Runtime.InteropServices;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Serve;

namespace VfioLab.Tests.Serve;

/// <summary>Interrupts and device DMA reaching the real client: eventfds passed in SET_IRQS, device writes landing in
/// the client's buffer.</summary>
public sealed class ServeDeviceTests
{
#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe code, which this test project does not allow.
    [DllImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static extern int EventFd(uint initial, int flags);

    [DllImport("libc", EntryPoint = "read", SetLastError = true)]
    private static extern nint Read(int fd, [Out] byte[] buffer, nint count);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern nint Write(int fd, byte[] buffer, nint count);
#pragma warning restore SYSLIB1054

    private const int EfdNonblock = 0x800;

    private static LabHost HostWithIrqs() => new LabHostBuilder()
        .WithMemory(256UL << 20)
        .AddPciDevice("nic", "0000:02:00.0", d => d.Bar(0, 1UL << 20).Group(7).Interrupts(intx: true, msi: 1, msix: 4, msixBar: 0))
        .Build();

    private static NativeBuffer IrqSet(IrqSetFlags flags, LabIrqIndex index, params int[] fds)
    {
        var arg = new NativeBuffer((ulong)(VfioIrqSet.SizeOf + (fds.Length * 4)));
        byte[] b = new byte[VfioIrqSet.SizeOf + (fds.Length * 4)];
        new VfioIrqSet { Argsz = (uint)b.Length, Flags = flags, Index = (uint)index, Start = 0, Count = (uint)fds.Length }.Write(b);
        for (int i = 0; i < fds.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(VfioIrqSet.SizeOf + (i * 4)), fds[i]);
        }
        arg.Write(0, b);
        return arg;
    }

    [Fact]
    public void SetIrqs_EventfdOfTheClient_IsSignalledWhenTheDeviceRaisesIt()
    {
        using var f = new ServeFixture(HostWithIrqs());
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        using (WireClient device = f.DeviceFd(group))
        {
            int efd = EventFd(0, EfdNonblock);
            Assert.True(efd >= 0);
            try
            {
                using NativeBuffer set = IrqSet(IrqSetFlags.DataEventfd | IrqSetFlags.ActionTrigger, LabIrqIndex.Msix, efd);
                Assert.Equal(0, device.Ioctl(VfioIoctl.DeviceSetIrqs, set).Result);
                // The client's argument is left as it gave it: its own fd number, not the model's.
                Assert.Equal(efd, (int)set.U32(VfioIrqSet.SizeOf));
                Assert.Equal(LabIrqIndex.Msix, f.Host.Device("nic").Irqs!.Enabled);
                byte[] counter = new byte[8];
                Assert.Equal(-1, Read(efd, counter, 8));

                Assert.True(f.Server.RaiseInterrupt("nic", LabIrqIndex.Msix, 0));
                Assert.True(f.Server.RaiseInterrupt("nic", LabIrqIndex.Msix, 0));
                Assert.Equal(8, Read(efd, counter, 8));
                Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(counter));
            }
            finally
            {
                Close(efd);
            }
        }
    }

    [Fact]
    public void IntxUnmaskEventfd_TheClientsWrite_ReachesTheModelAndUnmasks()
    {
        using var f = new ServeFixture(HostWithIrqs());
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        using (WireClient device = f.DeviceFd(group))
        {
            int trigger = EventFd(0, EfdNonblock);
            int unmask = EventFd(0, EfdNonblock);
            Assert.True(trigger >= 0 && unmask >= 0);
            try
            {
                using (NativeBuffer set = IrqSet(IrqSetFlags.DataEventfd | IrqSetFlags.ActionTrigger, LabIrqIndex.Intx, trigger))
                {
                    Assert.Equal(0, device.Ioctl(VfioIoctl.DeviceSetIrqs, set).Result);
                }
                using (NativeBuffer set = IrqSet(IrqSetFlags.DataEventfd | IrqSetFlags.ActionUnmask, LabIrqIndex.Intx, unmask))
                {
                    Assert.Equal(0, device.Ioctl(VfioIoctl.DeviceSetIrqs, set).Result);
                }
                Assert.True(f.Host.Device("nic").Irqs!.IntxUnmaskEventFd);
                byte[] counter = new byte[8];
                Assert.True(f.Server.RaiseInterrupt("nic", LabIrqIndex.Intx, 0));
                Assert.Equal(8, Read(trigger, counter, 8));
                Assert.True(f.Host.Device("nic").Irqs!.IntxMasked, "automasked");
                Assert.False(f.Server.RaiseInterrupt("nic", LabIrqIndex.Intx, 0), "masked: not delivered");

                // The client unmasks by writing its eventfd, as a VMM's KVM resampler does. The level is still asserted
                // (nobody deasserts it here), so the unmask sends it again: the trigger counts one more.
                Assert.Equal(8, Write(unmask, BitConverter.GetBytes(1UL), 8));
                long deadline = Environment.TickCount64 + 30_000; // the watcher polls every 100 ms; a loaded CI machine may be slow
                nint got;
                while ((got = Read(trigger, counter, 8)) < 0 && Environment.TickCount64 < deadline)
                {
                    Thread.Sleep(10);
                }
                Assert.Equal(8, got);
                Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(counter));
                // The server took the client's count, as the kernel's virqfd does.
                Assert.Equal(-1, Read(unmask, counter, 8));
            }
            finally
            {
                Close(trigger);
                Close(unmask);
            }
        }
        Assert.Empty(f.Server.Violations);
    }

    [Fact]
    public void SetIrqs_FdNotOpen_IsEbadfAndNothingIsEnabled()
    {
        using var f = new ServeFixture(HostWithIrqs());
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        using (WireClient device = f.DeviceFd(group))
        {
            using NativeBuffer set = IrqSet(IrqSetFlags.DataEventfd | IrqSetFlags.ActionTrigger, LabIrqIndex.Msix, 100_000);
            Assert.Equal(Errno.EBADF.AsReturn(), device.Ioctl(VfioIoctl.DeviceSetIrqs, set).Result);
            Assert.Null(f.Host.Device("nic").Irqs!.Enabled);
        }
    }

    [Fact]
    public void SetIrqs_FdThatIsNotAnEventfd_IsEinvalAndNothingIsEnabled()
    {
        using var f = new ServeFixture(HostWithIrqs());
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        using (WireClient device = f.DeviceFd(group))
        {
            // The session socket is open in this process but is no eventfd.
            using NativeBuffer set = IrqSet(IrqSetFlags.DataEventfd | IrqSetFlags.ActionTrigger, LabIrqIndex.Msix, session.Fd);
            Assert.Equal(Errno.EINVAL.AsReturn(), device.Ioctl(VfioIoctl.DeviceSetIrqs, set).Result);
            Assert.Null(f.Host.Device("nic").Irqs!.Enabled);
        }
    }

    [Fact]
    public void DeviceWrite_LandsInTheClientsBuffer_AndDeviceReadSeesTheClientsStores()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        {
            using var ram = new NativeBuffer(64 << 10);
            using (NativeBuffer map = ServeFixture.MapDmaArg(ram.Address, 0x200000, 64 << 10))
            {
                Assert.Equal(0, container.Ioctl(VfioIoctl.IommuMapDma, map).Result);
            }
            byte[] payload = [.. Enumerable.Range(0, 6000).Select(i => (byte)(i * 7))];
            ServeDmaResult w = f.Server.DeviceWrite("nic", 0x200000 + 100, payload);
            Assert.True(w.Model.Ok);
            Assert.Empty(w.ModelOnly);
            Assert.Equal(6000UL, w.RealBytes);
            Assert.Equal(payload, ram.Read(100, 6000));

            ram.Write(0x3000, [1, 2, 3, 4]);
            ServeDmaResult r = f.Server.DeviceRead("nic", 0x203000, 4);
            Assert.Equal(new byte[] { 1, 2, 3, 4 }, r.Data);
            Assert.Equal(4UL, r.RealBytes);
        }
        Assert.Empty(f.Server.Violations);
    }

    [Fact]
    public void DeviceWrite_OutsideAnyMapping_FaultsAndTouchesNoClient()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        {
            string before = f.Host.Digest();
            ServeDmaResult w = f.Server.DeviceWrite("nic", 0x9000_0000, [1, 2, 3]);
            Assert.False(w.Model.Ok);
            Assert.Equal(0UL, w.RealBytes);
            Assert.Equal(before, f.Host.Digest());
        }
    }
}

/// <summary>Device-region mmaps: MMAP_PREPARE names the shared file, MMAP_COMMIT maps the BAR in the model at the
/// client's address, and the client's stores and the model's writes meet in the file.</summary>
public sealed class ServeMmapTests
{
    private static byte[] MmapPayload(ulong length, MemoryProtection prot, MmapFlags flags, ulong offset, ulong? addr = null)
    {
        byte[] p = new byte[addr is null ? 24 : 32];
        int at = 0;
        if (addr is ulong a)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(p, a);
            at = 8;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(at), length);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(at + 8), (uint)prot);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(at + 12), (uint)flags);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(at + 16), offset);
        return p;
    }

    [Fact]
    public void Bar0_MappedThroughTheSharedFile_ClientStoresReachTheModelAndBack()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        using (WireClient device = f.DeviceFd(group))
        {
            // The memory-enable bit, as a VMM sets it before touching a BAR.
            ulong config = VfioPci.IndexToOffset(VfioPciRegionIndex.Config);
            using var cmd = new NativeBuffer(2);
            Assert.Equal(2, device.ReadWrite(Wire.Pread, cmd.Address, 2, config + 4).Result);
            cmd.Write(0, BitConverter.GetBytes((ushort)(BinaryPrimitives.ReadUInt16LittleEndian(cmd.Read(0, 2)) | 0x2)));
            Assert.Equal(2, device.ReadWrite(Wire.Pwrite, cmd.Address, 2, config + 4).Result);

            ulong bar0 = VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0);
            const MemoryProtection rw = MemoryProtection.Read | MemoryProtection.Write;
            WireClient.Answer prepared = device.Call(Wire.MmapPrepare, MmapPayload(1UL << 20, rw, MmapFlags.Shared, bar0));
            Assert.Equal(0, prepared.Result);
            Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(prepared.Payload));
            string path = System.Text.Encoding.UTF8.GetString(prepared.Payload.AsSpan(8, prepared.Payload.Length - 9));
            Assert.StartsWith(f.Server.RootPath, path, StringComparison.Ordinal);

            using var mapped = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0,
                System.IO.MemoryMappedFiles.MemoryMappedFileAccess.ReadWrite);
            using System.IO.MemoryMappedFiles.MemoryMappedViewAccessor view = mapped.CreateViewAccessor(0, 1L << 20);
            ulong addr = (ulong)view.SafeMemoryMappedViewHandle.DangerousGetHandle() + (ulong)view.PointerOffset;
            Assert.Equal(0, device.Call(Wire.MmapCommit, MmapPayload(1UL << 20, rw, MmapFlags.Shared, bar0, addr)).Result);

            // A CPU store of the client reaches the model's BAR: pread of the region sees it.
            view.Write(0x40, 0xfeedf00du);
            using var buf = new NativeBuffer(4);
            Assert.Equal(4, device.ReadWrite(Wire.Pread, buf.Address, 4, bar0 + 0x40).Result);
            Assert.Equal(0xfeedf00du, buf.U32(0));

            // A write through the model (pwrite of the region) reaches the client's mapping.
            buf.Write(0, BitConverter.GetBytes(0x12345678u));
            Assert.Equal(4, device.ReadWrite(Wire.Pwrite, buf.Address, 4, bar0 + 0x80).Result);
            Assert.Equal(0x12345678u, view.ReadUInt32(0x80));

            // MUNMAP after the client's munmap: the model's mapping goes too.
            byte[] unmap = new byte[16];
            BinaryPrimitives.WriteUInt64LittleEndian(unmap, addr);
            BinaryPrimitives.WriteUInt64LittleEndian(unmap.AsSpan(8), 1UL << 20);
            Assert.Equal(0, session.Call(Wire.Munmap, unmap).Result);
        }
        Assert.Empty(f.Server.Violations);
    }

    [Fact]
    public void MmapPrepare_OfTheContainer_IsEnodevAsTheKernelSays()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        using WireClient container = f.OpenFile("/dev/vfio/vfio");
        WireClient.Answer a = container.Call(Wire.MmapPrepare, MmapPayload(4096, MemoryProtection.Read, MmapFlags.Shared, 0));
        Assert.Equal(Errno.ENODEV.AsReturn(), a.Result);
    }

    [Fact]
    public void MmapPrepare_PastTheRegion_IsEinvalAndMapsNothing()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        using (WireClient device = f.DeviceFd(group))
        {
            ulong bar0 = VfioPci.IndexToOffset(VfioPciRegionIndex.Bar0);
            WireClient.Answer a = device.Call(Wire.MmapPrepare, MmapPayload(2UL << 20, MemoryProtection.Read, MmapFlags.Shared, bar0));
            Assert.Equal(Errno.EINVAL.AsReturn(), a.Result);
        }
    }
}
