using VfioLab.Lab;
using VfioLab.Serve;

namespace VfioLab.Tests.Serve;

/// <summary>The sysfs files of the served tree hold what Linux's would print for the same device and group.</summary>
public sealed class ServePathTreeTests
{
    [Fact]
    public void DeviceIds_AreWrittenAsLinuxPrintsThem()
    {
        LabHost host = new LabHostBuilder()
            .WithMemory(64UL << 20)
            .AddPciDevice("edu", "0000:00:10.0", d => d.Bar(0, 1UL << 20).Group(2).Ids(0x1234, 0x11e8, 0x00ff00))
            .AddPciDevice("nvme", "0000:03:00.0", d => d.Bar(0, 16384).Group(3).Ids(0x8086, 0xf1a8, 0x010802))
            .Build();
        using var f = new ServeFixture(host);
        string edu = Path.Combine(f.Server.RootPath, "sys/devices/pci0000:00/0000:00:10.0");
        Assert.Equal("0x1234\n", File.ReadAllText(Path.Combine(edu, "vendor")));
        Assert.Equal("0x11e8\n", File.ReadAllText(Path.Combine(edu, "device")));
        Assert.Equal("0x00ff00\n", File.ReadAllText(Path.Combine(edu, "class")));
        // Reached the way clients reach them: through the bus's link to the device.
        string nvme = Path.Combine(f.Server.RootPath, "sys/bus/pci/devices/0000:03:00.0");
        Assert.Equal("0x8086\n", File.ReadAllText(Path.Combine(nvme, "vendor")));
        Assert.Equal("0xf1a8\n", File.ReadAllText(Path.Combine(nvme, "device")));
        Assert.Equal("0x010802\n", File.ReadAllText(Path.Combine(nvme, "class")));
        Assert.Equal((ushort)0x8086, host.Devices.Single(d => d.Name == "nvme").VendorId);
        Assert.Equal(0x010802u, host.Devices.Single(d => d.Name == "nvme").ClassCode);
    }

    [Fact]
    public void ReservedRegions_ListTheProfilesAndTheHostsSortedByStart()
    {
        LabHost host = new LabHostBuilder()
            .WithMemory(64UL << 20)
            .WithIommu(IommuKind.AmdVi)
            .AddReservedRegion(0xd0000, 0xdffff, ReservedRegionKind.DirectRelaxable)
            .AddPciDevice("nic", "0000:02:00.0", d => d.Bar(0, 1UL << 20).Group(7))
            .Build();
        using var f = new ServeFixture(host);
        Assert.Equal(
            "0x00000000000d0000 0x00000000000dffff direct-relaxable\n"
            + "0x00000000fee00000 0x00000000feefffff msi\n"
            + "0x000000fd00000000 0x000000ffffffffff reserved\n",
            File.ReadAllText(Path.Combine(f.Server.RootPath, "sys/kernel/iommu_groups/7/reserved_regions")));
        Assert.Equal(new LabReservedRegion(0xfee00000, 0xfeefffff, ReservedRegionKind.Msi), host.Devices.Single().ReservedRegions[1]);
    }

    [Fact]
    public void ReservedRegions_ASoftwareMsiWindowIsListedAsMsi()
    {
        // The kernel's sysfs names IOMMU_RESV_MSI and IOMMU_RESV_SW_MSI alike.
        LabHost host = new LabHostBuilder().WithMemory(64UL << 20).WithIommu(IommuKind.SmmuV3)
            .AddPciDevice("nic", "0000:02:00.0", d => d.Bar(0, 1UL << 20).Group(7)).Build();
        Assert.Equal(ReservedRegionKind.SwMsi, host.Devices.Single().ReservedRegions.Single().Kind);
        Assert.Equal("0x0000000008000000 0x00000000080fffff msi\n", PathTree.ReservedRegions(host.Devices.Single().ReservedRegions));
    }

    [Fact]
    public void MediatedDevice_HasNoIdsAndAnEmptyReservedList()
    {
        LabHost host = new LabHostBuilder().WithMemory(64UL << 20)
            .AddMdevDevice("vgpu", Guid.Parse("c0ffee00-0000-4000-8000-000000000001"), group: 9).Build();
        LabDevice vgpu = host.Devices.Single();
        Assert.Null(vgpu.VendorId);
        Assert.Null(vgpu.DeviceId);
        Assert.Null(vgpu.ClassCode);
        Assert.Empty(vgpu.ReservedRegions);
    }
}
