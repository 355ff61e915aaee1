using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Lab;

namespace VfioLab.Tests.Lab;

/// <summary>The public API says why the model refused: <see cref="LabProcess.LastRefusal"/> for a process's last
/// system call, <see cref="LabDevice.LastRefusal"/> for a pinning driver's last call, <see cref="LabHost.LastRefusal"/>
/// for the host's last, and the failed call's <c>syscall</c> trace event.</summary>
public sealed class LabRefusalTests
{
    private static (LabHost Host, LabProcess Vmm, Container Container, ulong Ram) Ready(ulong memlock)
    {
        LabHost host = new LabHostBuilder()
            .WithMemory(1UL << 30)
            .AddPciDevice("nic", "0000:02:00.0", d => d.Bar(0, 1UL << 20).Group(7))
            .AddMdevDevice("vgpu", Guid.Parse("8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11"), group: 20)
            .AddProcess("vmm", memlockBytes: memlock)
            .Build();
        LabProcess vmm = host.Process("vmm");
        var container = Container.Open(vmm.Syscalls);
        var group = Group.Open(vmm.Syscalls, 7);
        group.SetContainer(container);
        container.SetIommu(VfioExtension.Type1v2Iommu);
        ulong ram = (ulong)vmm.Syscalls.Mmap(0, 8UL << 20, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        return (host, vmm, container, ram);
    }

    [Fact]
    public void MapDma_PastRlimitMemlock_LastRefusalGivesTheNumbers()
    {
        (LabHost host, LabProcess vmm, Container container, ulong ram) = Ready(memlock: 64UL << 20);
        container.MapDma(0x100000, ram, 2UL << 20);
        vmm.MemlockLimitBytes = 2UL << 20;

        VfioException e = Assert.Throws<VfioException>(() => container.MapDma(0x400000, ram + (4UL << 20), 2UL << 20));

        Assert.Equal(Errno.ENOMEM, e.Errno);
        LabRefusal refusal = Assert.IsType<LabRefusal>(vmm.LastRefusal);
        Assert.Equal(Errno.ENOMEM, refusal.Errno);
        Assert.Equal("vfio_pin_pages_remote", refusal.Check);
        Assert.Equal("charging 512 pages would make locked_vm 1024 pages, over RLIMIT_MEMLOCK 512 pages", refusal.Reason);
        Assert.Null(refusal.Source);
        Assert.Equal(refusal, host.LastRefusal);
        Assert.Equal(512UL, vmm.LockedVmPages);
    }

    [Fact]
    public void MmapForeignMmio_OfAnExitedProcess_IsEsrchWithItsReason()
    {
        (LabHost host, LabProcess vmm, _, _) = Ready(memlock: 64UL << 20);
        vmm.Exit();

        long ret = vmm.MmapForeignMmio(0, 0x1000, MemoryProtection.Read);

        Assert.Equal(Errno.ESRCH.AsReturn(), ret);
        LabRefusal refusal = Assert.IsType<LabRefusal>(vmm.LastRefusal);
        Assert.Equal("mmap", refusal.Check);
        Assert.Equal($"process {vmm.Pid} has exited", refusal.Reason);
        Assert.Equal(refusal, host.LastRefusal);
    }

    [Fact]
    public void ReadEventFd_WithNothingSignalled_IsEagainWithItsReason()
    {
        (LabHost host, LabProcess vmm, _, _) = Ready(memlock: 64UL << 20);
        int fd = vmm.CreateEventFd();

        Assert.Equal(Errno.EAGAIN.AsReturn(), vmm.ReadEventFd(fd));

        Assert.Equal("eventfd_read", vmm.LastRefusal?.Check);
        Assert.Equal(vmm.LastRefusal, host.LastRefusal);
    }

    [Fact]
    public void LastRefusal_AfterASuccessfulCall_IsNull()
    {
        (LabHost host, LabProcess vmm, Container container, ulong ram) = Ready(memlock: 64UL << 20);
        Assert.Throws<VfioException>(() => container.MapDma(0x1800, ram, 0x1000));
        Assert.Equal("vfio_dma_do_map", vmm.LastRefusal?.Check);

        container.MapDma(0x100000, ram, 0x1000);

        Assert.Null(vmm.LastRefusal);
        Assert.Null(host.LastRefusal);
    }

    [Fact]
    public void MapDma_Wrapping_RefusalCitesTheProfileCommit()
    {
        (_, LabProcess vmm, Container container, ulong ram) = Ready(memlock: 64UL << 20);

        Assert.Throws<VfioException>(() => container.MapDma(0xfffffffffffff000, ram, 0x2000));

        LabRefusal refusal = vmm.LastRefusal!;
        Assert.Equal(Errno.EOVERFLOW, refusal.Errno);
        Assert.Contains("6012379ede6a", refusal.Source, StringComparison.Ordinal);
        Assert.EndsWith("(vfio_dma_do_map; " + refusal.Source + ")", refusal.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void PinPages_OfTheMdev_DeviceLastRefusalSaysWhy()
    {
        (LabHost host, LabProcess vmm, Container container, _) = Ready(memlock: 64UL << 20);
        var mdevGroup = Group.Open(vmm.Syscalls, 20);
        mdevGroup.SetContainer(container);
        using Device vgpu = mdevGroup.OpenDevice("8e0d7d2c-3c54-4a2c-9d1b-6f1c2a0a5b11");
        LabDevice device = host.Device("vgpu");

        long r = device.PinPages(0x100000, 1, write: true, new ulong[1]);

        Assert.Equal(Errno.EINVAL.AsReturn(), r);
        Assert.Equal("vfio_iommu_type1_pin_pages", device.LastRefusal?.Check);
        Assert.Equal("no mapping holds iova 0x100000 (vfio_find_dma)", device.LastRefusal?.Reason);
        Assert.Equal(device.LastRefusal, host.LastRefusal);
    }

    [Fact]
    public void FailedSyscall_TraceEventCarriesRefusedByAndReason()
    {
        (LabHost host, LabProcess vmm, Container container, ulong ram) = Ready(memlock: 64UL << 20);
        var events = new List<LabTraceEvent>();
        using IDisposable sub = host.SubscribeTrace(events.Add);

        Assert.Throws<VfioException>(() => container.MapDma(0xfee00000, ram, 2UL << 20));

        LabTraceEvent call = Assert.Single(events, e => e.Kind == TraceKinds.Syscall);
        Dictionary<string, object> fields = call.Fields.ToDictionary(f => f.Key, f => f.Value);
        Assert.Equal("vfio_iommu_iova_dma_valid", fields["refused_by"]);
        Assert.Equal("[0xfee00000, 0xfeffffff] overlaps the msi reserved region [0xfee00000, 0xfeefffff] of group 7", fields["reason"]);
        Assert.False(fields.ContainsKey("source"));
    }
}
