using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Lab;

namespace VfioLab.Tests.Lab;

/// <summary>The public inspection a differential test needs, as a VMM author's test reads it: a device's IOMMU domain
/// and BAR, a process's page table, a container's external pins, VADDR state and device holds, the host's pin counts.</summary>
public sealed class LabInspectionTests
{
    private const ulong MiB = 1UL << 20;
    private const string VgpuUuid = "5a0e2f6c-1d7b-4c43-9a53-0c3bd0b6f0aa";
    private const MemoryProtection ReadWrite = MemoryProtection.Read | MemoryProtection.Write;

    private static LabHost Host() => new LabHostBuilder()
        .WithMemory(1UL << 30)
        .AddPciDevice("gpu", "0000:01:00.0", d => d.Bar(0, 1 * MiB).Group(1))
        .AddMdevDevice("vgpu", Guid.Parse(VgpuUuid), group: 10)
        .AddProcess("vmm", 64 * MiB)
        .Build();

    private static (Container Container, Group Group) Attach(LabProcess p, int number)
    {
        var container = Container.Open(p.Syscalls);
        var group = Group.Open(p.Syscalls, number);
        group.SetContainer(container);
        container.SetIommu(VfioExtension.Type1v2Iommu);
        return (container, group);
    }

    private static ulong Anonymous(LabProcess p, ulong size) =>
        (ulong)p.Syscalls.Mmap(0, size, ReadWrite, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);

    [Fact]
    public void Domain_AfterMapDma_TranslatesEveryPageToTheProcessFrame()
    {
        LabHost host = Host();
        LabProcess vmm = host.Process("vmm");
        (Container container, _) = Attach(vmm, 1);
        ulong buf = Anonymous(vmm, 2 * MiB);

        container.MapDma(0x100000, buf, 2 * MiB, DmaMapFlags.Read);

        LabDomain domain = Assert.IsType<LabDomain>(host.Device("gpu").Domain);
        Assert.Equal(2 * MiB, domain.Runs.Aggregate(0UL, (sum, r) => sum + (r.Last - r.Iova + 1)));
        Assert.All(domain.Runs, r => Assert.True(r.Readable && !r.Writable));
        for (ulong off = 0; off < 2 * MiB; off += 0x1000)
        {
            Assert.Equal(vmm.FrameAt(buf + off) * host.PageSize, domain.IovaToPhys(0x100000 + off));
        }
        Assert.Null(domain.IovaToPhys(0xfffff));
        Assert.Null(domain.IovaToPhys(0x300000));
    }

    [Fact]
    public void Domain_GroupNotAttachedOrEmulated_IsNull()
    {
        LabHost host = Host();
        Attach(host.Process("vmm"), 10);

        Assert.Null(host.Device("gpu").Domain);
        Assert.Null(host.Device("vgpu").Domain);
    }

    [Fact]
    public void BarAddress_PresentBar_IsItsPhysicalBaseElseNull()
    {
        LabHost host = Host();

        ulong? bar = host.Device("gpu").BarAddress(0);

        Assert.NotNull(bar);
        Assert.Equal(0UL, bar!.Value % MiB);
        Assert.Null(host.Device("gpu").BarAddress(1));
        Assert.Null(host.Device("gpu").BarAddress(6));
        Assert.Null(host.Device("vgpu").BarAddress(0));
    }

    [Fact]
    public void FrameAt_UntouchedWrittenAndExited_NullFrameNull()
    {
        LabHost host = Host();
        LabProcess vmm = host.Process("vmm");
        ulong buf = Anonymous(vmm, 0x2000);

        Assert.Null(vmm.FrameAt(buf));
        vmm.Syscalls.WriteMemory(buf, [1]);
        Assert.NotNull(vmm.FrameAt(buf));
        Assert.Null(vmm.FrameAt(buf + 0x1000));
        vmm.Exit();
        Assert.Null(vmm.FrameAt(buf));
    }

    [Fact]
    public void PinPages_MdevAloneInContainer_ShowsExternalPinsChargesAndFramePins()
    {
        LabHost host = Host();
        LabProcess vmm = host.Process("vmm");
        (Container container, Group group) = Attach(vmm, 10);
        using Device vgpu = group.OpenDevice(VgpuUuid);
        ulong buf = Anonymous(vmm, 4 * 0x1000);
        container.MapDma(0x10000, buf, 4 * 0x1000, DmaMapFlags.Read);
        LabDevice driver = host.Device("vgpu");

        long writeOnly = driver.PinPages(0x11000, 1, MemoryProtection.Write, []);
        long readOnly = driver.PinPages(0x11000, 2, MemoryProtection.Read, []);

        Assert.Equal(Errno.EPERM.AsReturn(), writeOnly);
        Assert.Equal(2, readOnly);
        LabContainer inspected = Assert.Single(host.Containers);
        Assert.False(Assert.Single(inspected.Mappings).IommuMapped);
        LabExternalPinRun run = Assert.Single(inspected.ExternalPins);
        Assert.Equal((0x11000UL, 2UL, 1U), (run.Iova, run.Pages, run.RefCount));
        Assert.Equal(vmm.FrameAt(buf + 0x1000), run.Pfn);
        Assert.Equal(2UL, driver.PinsHeld);
        Assert.Equal(2UL, host.TotalPins);
        Assert.Equal(1UL, host.PinCount(run.Pfn));
        Assert.Equal(2UL, vmm.LockedVmPages);
        Assert.Null(host.Device("gpu").PinsHeld);
    }

    [Fact]
    public void VaddrInvalidCount_InvalidatedThenUpdated_CountsTheMappingMeanwhile()
    {
        LabHost host = Host();
        LabProcess vmm = host.Process("vmm");
        (Container container, _) = Attach(vmm, 1);
        ulong buf = Anonymous(vmm, 0x4000);
        container.MapDma(0x100000, buf, 0x4000);

        container.InvalidateVaddr(0x100000, 0x4000);
        LabContainer inspected = Assert.Single(host.Containers);
        int during = inspected.VaddrInvalidCount;
        bool flagged = Assert.Single(inspected.Mappings).VaddrInvalid;
        container.UpdateVaddr(0x100000, buf, 0x4000);

        Assert.Equal((1, true), (during, flagged));
        Assert.Equal(0, inspected.VaddrInvalidCount);
        Assert.True(Assert.Single(inspected.Mappings).IommuMapped);
    }

    [Fact]
    public void DeviceHolds_SeedsMapOfBarThenRelease_HeldThenReleasingThenGone()
    {
        LabHost host = Host();
        LabProcess vmm = host.Process("vmm");
        (Container container, Group group) = Attach(vmm, 1);
        Device gpu = group.OpenDevice("0000:01:00.0");
        ulong bar = gpu.MapRegion(0, 0, 1 * MiB);
        container.MapDma(0x100000, bar, 1 * MiB);
        LabContainer inspected = Assert.Single(host.Containers);

        LabDeviceHold held = Assert.Single(inspected.DeviceHolds);
        host.Device("gpu").Release();
        IReadOnlyList<LabDeviceHold> released = inspected.DeviceHolds;
        host.RunDeferredWork();

        Assert.Equal(("0000:01:00.0", false), (held.Device, held.Releasing));
        Assert.Equal([0x100000UL], held.MappingIovas);
        Assert.All(released, h => Assert.True(h.Releasing));
        Assert.Empty(inspected.DeviceHolds);
    }
}
