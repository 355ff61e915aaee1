using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Serve;

namespace VfioLab.Tests.Serve;

/// <summary>What a client sends can never stop the server or change the model when it is malformed: each case answers
/// as the protocol or the kernel says and leaves the model's state as it was.</summary>
public sealed class ServeBadInputTests
{
    private static byte[] Header(uint magic, ushort version, ushort op, uint length)
    {
        byte[] h = new byte[Wire.HeaderSize];
        Wire.WriteRequest(h, op, length, Environment.ProcessId, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(h, magic);
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(4), version);
        return h;
    }

    public static TheoryData<string, uint, ushort, ushort, uint> MalformedHeaders => new()
    {
        { "wrong magic", 0xdeadbeef, 1, Wire.Hello, 16 },
        { "reply magic in a request", Wire.ReplyMagic, 1, Wire.Hello, 16 },
        { "wrong version", Wire.RequestMagic, 2, Wire.Hello, 16 },
        { "unknown op", Wire.RequestMagic, 1, 99, 0 },
        { "oversized length", Wire.RequestMagic, 1, Wire.Ioctl, Wire.MaxPayload + 1 },
    };

    [Theory]
    [MemberData(nameof(MalformedHeaders))]
    public void MalformedHeader_IsEprotoThenClosed_AndTheModelIsUnchanged(string why, uint magic, ushort version, ushort op, uint length)
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        using WireClient container = f.OpenFile("/dev/vfio/vfio");
        string before = f.Host.Digest();
        container.Socket.Send(Header(magic, version, op, length));
        WireClient.Answer a = container.Receive();
        Assert.True(a.Result == Wire.EProto, $"{why}: {a.Result}");
        Assert.True(container.ClosedByServer(TimeSpan.FromSeconds(10)), why);
        // The connection's end closes the container's model file; nothing else changed, and the server still serves.
        SpinWait.SpinUntil(() => f.Host.Digest() != before, TimeSpan.FromSeconds(10));
        using WireClient again = f.OpenFile("/dev/vfio/vfio");
        Assert.Equal(1, again.Ioctl(VfioIoctl.CheckExtension, (ulong)VfioExtension.Type1v2Iommu).Result);
        Assert.Contains("protocol error", f.Log, StringComparison.Ordinal);
        Assert.Empty(f.Server.Violations);
    }

    [Fact]
    public void Garbage_BeforeAnyHello_IsEprotoAndCreatesNoProcess()
    {
        using var f = new ServeFixture();
        string before = f.Host.Digest();
        int processes = f.Host.Processes.Count;
        using WireClient c = f.Connect();
        c.Socket.Send([.. Enumerable.Range(0, 40).Select(i => (byte)(i * 37))]);
        Assert.Equal(Wire.EProto, c.Receive().Result);
        Assert.True(c.ClosedByServer(TimeSpan.FromSeconds(10)));
        Assert.Equal(before, f.Host.Digest());
        Assert.Equal(processes, f.Host.Processes.Count);
    }

    [Fact]
    public void ClientDyingInsideARequest_ChangesNothing_AndOthersAreServed()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (group)
        {
            string before = f.Host.Digest();
            // A MAP_DMA request whose payload never comes: the header announces 16 bytes, 4 arrive, then the end.
            byte[] h = Header(Wire.RequestMagic, 1, Wire.Ioctl, 16);
            container.Socket.Send(h);
            container.Socket.Send(new byte[4]);
            container.Dispose();
            Assert.True(SpinWait.SpinUntil(() => f.Log.Contains("connection ended inside a request", StringComparison.Ordinal), TimeSpan.FromSeconds(10)));
            // The container's fd was closed (its last reference); the group still holds the container, as in the
            // kernel, and the half-sent MAP_DMA mapped nothing.
            Assert.True(SpinWait.SpinUntil(() => f.Host.Digest() != before, TimeSpan.FromSeconds(10)));
            Assert.Empty(f.Host.Containers.Single().Mappings);
            using var status = new NativeBuffer(VfioGroupStatus.SizeOf);
            status.Write(0, BitConverter.GetBytes((uint)VfioGroupStatus.SizeOf));
            Assert.Equal(0, group.Ioctl(VfioIoctl.GroupGetStatus, status).Result);
            Assert.Equal((uint)(GroupStatusFlags.Viable | GroupStatusFlags.ContainerSet), status.U32(4));
        }
        Assert.Empty(f.Server.Violations);
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("/dev/vfio/../../etc/passwd")]
    [InlineData("/dev/vfio/7/../vfio")]
    [InlineData("/dev/mem")]
    [InlineData("relative/dev/vfio/vfio")]
    public void Open_OutsideDevVfio_IsEnoentAndNeverTouched(string path)
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        string before = f.Host.Digest();
        using WireClient c = f.Connect();
        Assert.Equal(Errno.ENOENT.AsReturn(), c.Open(path).Result);
        Assert.Equal(before, f.Host.Digest());
        Assert.Contains("refused", f.Log, StringComparison.Ordinal);
        // The connection stays usable: it is not a file yet.
        Assert.Equal(0, c.Open("/dev/vfio/vfio").Result);
    }

    [Fact]
    public void Open_OfAGroupTheHostDoesNotHave_IsEnoent()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        using WireClient c = f.Connect();
        string before = f.Host.Digest();
        Assert.Equal(Errno.ENOENT.AsReturn(), c.Open("/dev/vfio/99").Result);
        Assert.Equal(before, f.Host.Digest());
    }

    [Fact]
    public void CallerPidNeitherPeerNorDescendant_IsEsrch_AndTheConnectionStaysUsable()
    {
        using var f = new ServeFixture();
        using WireClient c = f.Connect();
        c.Pid = 1;
        Assert.Equal(Errno.ESRCH.AsReturn(), c.Hello().Result);
        c.Pid = Environment.ProcessId;
        Assert.Equal(0, c.Hello().Result);
    }

    [Fact]
    public void IoctlOnTheSessionConnection_IsEbadf()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        Assert.Equal(Errno.EBADF.AsReturn(), session.Ioctl(VfioIoctl.GetApiVersion, 0).Result);
    }

    [Fact]
    public void ArgumentPointerNotMapped_IsEfaultAndTheModelIsUnchanged()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        {
            string before = f.Host.Digest();
            Assert.Equal(Errno.EFAULT.AsReturn(), container.Ioctl(VfioIoctl.IommuMapDma, 0x10).Result);
            Assert.Equal(Errno.EFAULT.AsReturn(), group.Ioctl(VfioIoctl.GroupSetContainer, 0x10).Result);
            Assert.Equal(Errno.EFAULT.AsReturn(), group.Ioctl(VfioIoctl.GroupGetDeviceFd, 0x10).Result);
            Assert.Equal(before, f.Host.Digest());
        }
    }

    [Fact]
    public void MemoryThatVanishedBeforeMapDma_IsEfault_AndBeforeADeviceWrite_StaysInTheModel()
    {
        using var f = new ServeFixture();
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using (container)
        using (group)
        {
            // A large buffer is its own mmap in glibc: freeing it unmaps it.
            var gone = new NativeBuffer(8UL << 20);
            ulong vaddr = (gone.Address + 0xfff) & ~0xfffUL;
            using (NativeBuffer map = ServeFixture.MapDmaArg(vaddr, 0x400000, 1UL << 20))
            {
                Assert.Equal(0, container.Ioctl(VfioIoctl.IommuMapDma, map).Result);
            }
            gone.Dispose();
            // The device writes where the client's memory was: the model takes it, the client is not touched.
            ServeDmaResult w = f.Server.DeviceWrite("nic", 0x400000, [9, 9, 9, 9]);
            Assert.True(w.Model.Ok);
            Assert.Equal(0UL, w.RealBytes);
            Assert.NotEmpty(w.ModelOnly);
            // A new MAP_DMA of the vanished range: the maps are re-read, and the model finds nothing there.
            using (NativeBuffer map = ServeFixture.MapDmaArg(vaddr, 0x800000, 1UL << 20))
            {
                Assert.Equal(Errno.EFAULT.AsReturn(), container.Ioctl(VfioIoctl.IommuMapDma, map).Result);
            }
            Assert.Single(f.Host.Containers.Single().Mappings);
            // And pread into it: EFAULT.
            using WireClient device = f.DeviceFd(group);
            Assert.Equal(Errno.EFAULT.AsReturn(), device.ReadWrite(Wire.Pread, vaddr, 4, VfioPci.IndexToOffset(VfioPciRegionIndex.Config)).Result);
            Assert.Equal(Errno.EFAULT.AsReturn(), device.ReadWrite(Wire.Pwrite, vaddr, 4, VfioPci.IndexToOffset(VfioPciRegionIndex.Config)).Result);
        }
        Assert.Empty(f.Server.Violations);
    }

    [Fact]
    public void TwoClientsRacingOnOneContainer_NeitherCrashesTheServerNorBreaksAnInvariant()
    {
        using var f = new ServeFixture(new LabHostBuilder()
            .WithMemory(256UL << 20)
            .AddPciDevice("nic", "0000:02:00.0", d => d.Bar(0, 1UL << 20).Group(7))
            .AddPciDevice("nic2", "0000:03:00.0", d => d.Bar(0, 1UL << 20).Group(8))
            .Build());
        using WireClient session = f.Session();
        (WireClient container, WireClient group) = f.Type1Container();
        using WireClient group8 = f.OpenFile("/dev/vfio/8");
        using var ram = new NativeBuffer(1UL << 20);
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        using (container)
        using (group)
        {
            // One connection maps and unmaps over and over while another attaches and detaches a second group to the
            // same container: the server serialises them; every answer is one the kernel can give.
            var mapper = new Thread(() =>
            {
                for (int i = 0; i < 40; i++)
                {
                    using NativeBuffer map = ServeFixture.MapDmaArg(ram.Address, 0x100000, 1UL << 20);
                    long r = container.Ioctl(VfioIoctl.IommuMapDma, map).Result;
                    if (r != 0)
                    {
                        failures.Add($"map {i}: {r}");
                    }
                    using var unmap = new NativeBuffer(VfioIommuType1DmaUnmap.SizeOf);
                    byte[] u = new byte[VfioIommuType1DmaUnmap.SizeOf];
                    new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Iova = 0x100000, Size = 1UL << 20 }.Write(u);
                    unmap.Write(0, u);
                    r = container.Ioctl(VfioIoctl.IommuUnmapDma, unmap).Result;
                    if (r != 0)
                    {
                        failures.Add($"unmap {i}: {r}");
                    }
                }
            });
            var attacher = new Thread(() =>
            {
                using var fdArg = new NativeBuffer(4);
                fdArg.Write(0, BitConverter.GetBytes(container.Fd));
                for (int i = 0; i < 40; i++)
                {
                    long r = group8.Ioctl(VfioIoctl.GroupSetContainer, fdArg).Result;
                    if (r != 0)
                    {
                        failures.Add($"set_container {i}: {r}");
                    }
                    r = group8.Ioctl(VfioIoctl.GroupUnsetContainer, 0).Result;
                    if (r != 0)
                    {
                        failures.Add($"unset_container {i}: {r}");
                    }
                }
            });
            mapper.Start();
            attacher.Start();
            mapper.Join();
            attacher.Join();
        }
        Assert.Empty(failures);
        Assert.Empty(f.Server.Violations);
        lock (f.Server.Gate)
        {
            Assert.Empty(f.Host.CheckInvariants());
        }
    }
}
