using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Lab;

namespace VfioLab.Tests.Lab;

/// <summary>The public API as a VMM author's test drives it: build a host, run the typed client on a process, inspect.</summary>
public sealed class LabHostTests
{
    private const ulong MiB = 1UL << 20;

    private static LabHost Host(ulong memlock = 64 * MiB) => new LabHostBuilder()
        .WithMemory(1UL << 30)
        .AddPciDevice("nic", "0000:02:00.0", d => d.Bar(0, 1 * MiB).Group(7))
        .AddProcess("vmm", memlock)
        .Build();

    private static (Container Container, Group Group) Attach(LabProcess p)
    {
        var container = Container.Open(p.Syscalls);
        var group = Group.Open(p.Syscalls, 7);
        group.SetContainer(container);
        container.SetIommu(VfioExtension.Type1v2Iommu);
        return (container, group);
    }

    [Fact]
    public void MapDma_TypedClientOnLabProcess_ChargesLockedVmAndDeviceReadsBack()
    {
        LabHost host = Host();
        LabProcess vmm = host.Process("vmm");
        (Container container, Group group) = Attach(vmm);
        ulong buf = (ulong)vmm.Syscalls.Mmap(0, 2 * MiB, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        vmm.Syscalls.WriteMemory(buf + 0x10, [1, 2, 3]);

        container.MapDma(0x100000, buf, 2 * MiB);

        Assert.Equal(2 * MiB, vmm.LockedVmBytes);
        LabContainer inspected = Assert.Single(host.Containers);
        Assert.Equal(65534UL, inspected.DmaAvail);
        LabMapping m = Assert.Single(inspected.Mappings);
        Assert.Equal((0x100000UL, 2 * MiB, buf, vmm.Pid), (m.Iova, m.Size, m.Vaddr, m.OwnerPid));
        LabDmaResult read = host.Device("nic").DmaRead(0x100010, 3);
        Assert.True(read.Ok);
        Assert.Equal(new byte[] { 1, 2, 3 }, read.Data);
        Assert.Empty(host.CheckInvariants());
        group.Dispose();
        container.Dispose();
    }

    [Fact]
    public void MapDma_OverMemlock_ThrowsEnomemAndLeavesDigestUnchanged()
    {
        LabHost host = Host(memlock: 1 * MiB);
        LabProcess vmm = host.Process("vmm");
        (Container container, _) = Attach(vmm);
        ulong buf = (ulong)vmm.Syscalls.Mmap(0, 2 * MiB, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        string before = host.Digest();

        VfioException e = Assert.Throws<VfioException>(() => container.MapDma(0, buf, 2 * MiB));

        Assert.Equal(Errno.ENOMEM, e.Errno);
        Assert.Equal(before, host.Digest());
        Assert.Equal(0UL, vmm.LockedVmBytes);
    }

    [Fact]
    public void DmaRead_Unmapped_FaultsNotMapped()
    {
        LabHost host = Host();
        Attach(host.Process("vmm"));

        LabDmaResult r = host.Device("nic").DmaRead(0x4000, 8);

        Assert.False(r.Ok);
        Assert.Equal(DmaFaultReason.NotMapped, r.FaultReason);
        Assert.Equal(0x4000UL, r.FaultIova);
    }

    [Fact]
    public void SubscribeTrace_Disposed_StopsDelivering()
    {
        LabHost host = Host();
        var kinds = new List<string>();
        IDisposable sub = host.SubscribeTrace(e => kinds.Add(e.Kind));
        Attach(host.Process("vmm"));
        int seen = kinds.Count;
        sub.Dispose();
        host.Spawn("other").Syscalls.Open("/dev/vfio/vfio");

        Assert.True(seen > 0);
        Assert.Equal(seen, kinds.Count);
    }

    [Fact]
    public void Build_TwoDevicesAtOneAddress_ThrowsNamingTheDevice()
    {
        var builder = new LabHostBuilder()
            .AddPciDevice("a", "0000:01:00.0", d => d.Bar(0, MiB))
            .AddPciDevice("b", "0000:01:00.0", d => d.Bar(0, MiB));

        LabConfigurationException e = Assert.Throws<LabConfigurationException>(builder.Build);

        Assert.Equal("b", e.Subject);
        Assert.Contains("0000:01:00.0", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("no-such-quirk")]
    [InlineData("")]
    public void WithQuirk_UnknownName_Throws(string name) =>
        Assert.Throws<LabConfigurationException>(() => new LabHostBuilder().WithQuirk(name));

    [Fact]
    public void WithParameter_UnknownOrOutOfRange_Throws()
    {
        Assert.Throws<LabConfigurationException>(() => new LabHostBuilder().WithParameter("dma_entry_limt", 5));
        Assert.Throws<LabConfigurationException>(() => new LabHostBuilder().WithParameter("disable_hugepages", 2));
        Assert.Throws<LabConfigurationException>(() => new LabHostBuilder().WithParameter("dma_entry_limit", 1UL << 32));
    }

    [Fact]
    public void CheckAfterEveryCall_CleanCalls_DoNotThrow()
    {
        LabHost host = Host();
        host.Checking = InvariantChecking.AfterEveryCall;
        (Container container, Group group) = Attach(host.Process("vmm"));
        group.Dispose();
        container.Dispose();
        Assert.Empty(host.CheckInvariants());
    }

    [Fact]
    public void TryFork_Child_IsAListedProcessWithItsOwnSurface()
    {
        LabHost host = Host();
        LabProcess vmm = host.Process("vmm");

        Errno e = vmm.TryFork(out LabProcess? child, "upgrade");

        Assert.Equal(Errno.None, e);
        Assert.NotNull(child);
        Assert.Same(child, host.Process("upgrade"));
        Assert.NotEqual(vmm.Pid, child!.Pid);
        child.Exit();
        Assert.False(child.IsAlive);
    }
}
