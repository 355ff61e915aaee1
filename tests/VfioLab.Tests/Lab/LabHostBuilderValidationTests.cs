using VfioLab.Lab;

namespace VfioLab.Tests.Lab;

/// <summary>The public builder holds a description to the same rules the scenario parser reports
/// (<see cref="LabHostBuilder.Validate"/>, run first by <see cref="LabHostBuilder.Build"/>): each refusal a
/// <see cref="LabConfigurationException"/> naming the subject and the setting, never another exception.</summary>
public sealed class LabHostBuilderValidationTests
{
    private static readonly Guid Uuid = Guid.Parse("11111111-2222-3333-4444-555555555555");

    public static TheoryData<string, Func<LabHostBuilder>, string, string, string> Refused => new()
    {
        { "memory past 1 PiB", () => new LabHostBuilder().WithMemory(0xfffffffffffff000), "host", "memory",
            "host memory 0xfffffffffffff000 exceeds the limit of 0x4000000000000 (1 PiB): RAM and the PCI MMIO window above it share the lower half of the 52-bit physical address space" },
        { "memory of 0", () => new LabHostBuilder().WithMemory(0), "host", "memory", "host memory 0x0 is not a non-zero multiple of the page size 0x1000" },
        { "frame runs over budget", () => new LabHostBuilder().WithMemory(256UL << 30).WithScatteredFrames(1), "host", "frames",
            "host memory 0x4000000000 in scattered runs of 1 page(s) makes 67108864 runs of frames, over the budget of 33554432 runs the model's state is held to (longer runs or less memory fit)" },
        { "BAR of 1 byte", () => new LabHostBuilder().AddPciDevice("gpu", "0000:01:00.0", d => d.Bar(0, 1)), "gpu", "bars[0].size",
            "device 'gpu': BAR 0 size 0x1 is below the 16 bytes of the smallest memory BAR (PCI)" },
        { "BAR of 3 bytes", () => new LabHostBuilder().AddPciDevice("gpu", "0000:01:00.0", d => d.Bar(0, 3)), "gpu", "bars[0].size",
            "device 'gpu': BAR 0 size 0x3 is not a power of two" },
        { "BAR index 6", () => new LabHostBuilder().AddPciDevice("gpu", "0000:01:00.0", d => d.Bar(6, 4096)), "gpu", "bars[0].index",
            "device 'gpu': BAR index 6 is not 0-5" },
        { "BAR declared twice", () => new LabHostBuilder().AddPciDevice("gpu", "0000:01:00.0", d => d.Bar(2, 4096, is64Bit: false).Bar(2, 8192, is64Bit: false)),
            "gpu", "bars[1].index", "device 'gpu': BAR 2 is declared twice" },
        { "BAR register 1 under a 64-bit BAR 0, declared first", () => new LabHostBuilder().AddPciDevice("gpu", "0000:01:00.0", d => d.Bar(1, 4096, is64Bit: false).Bar(0, 4096)),
            "gpu", "bars[1].index", "device 'gpu': BAR 0 is 64-bit and takes BAR register 1 too" },
        { "BAR of 2^63", () => new LabHostBuilder().AddPciDevice("gpu", "0000:01:00.0", d => d.Bar(0, 1UL << 63)), "gpu", "bars",
            "device 'gpu': BAR 0 size 0x8000000000000000 does not fit what is left of the MMIO window [0x400000000, 0x7ffffffffffff] (from 0x400000000)" },
        { "window used up by a second device", () => new LabHostBuilder().WithMemory(1UL << 50)
                .AddPciDevice("a", "0000:01:00.0", d => d.Bar(0, 1UL << 49)).AddPciDevice("b", "0000:02:00.0", d => d.Bar(0, 1UL << 50)), "b", "bars",
            "device 'b': BAR 0 size 0x4000000000000 does not fit what is left of the MMIO window [0x4000000000000, 0x7ffffffffffff] (from 0x6000000000000)" },
        { "device IOMMU page size 2 KiB", () => new LabHostBuilder().AddPciDevice("nic", "0000:01:00.0", d => d.WithIommuPageSizes(2048)), "nic", "iommu_page_sizes",
            "device 'nic': IOMMU page size 0x800 is below the smallest IOPTE of any modelled IOMMU (0x1000)" },
        { "device IOMMU page size not a power of two", () => new LabHostBuilder().AddPciDevice("nic", "0000:01:00.0", d => d.WithIommuPageSizes(4096, 12288)), "nic", "iommu_page_sizes[1]",
            "device 'nic': IOMMU page size 0x3000 is not a power of two" },
        { "mdev in a PCI device's group", () => new LabHostBuilder().AddPciDevice("gpu", "0000:01:00.0", d => d.Group(3)).AddMdevDevice("m", Uuid, group: 3), "m", "group",
            "mdev 'm' needs an emulated group of its own; group 3 is also device 'gpu'" },
        { "two mdevs with one UUID", () => new LabHostBuilder().AddMdevDevice("m1", Uuid).AddMdevDevice("m2", Uuid), "m2", "address",
            "mdev 'm2': UUID 11111111-2222-3333-4444-555555555555 is already device 'm1'" },
        { "group behind two IOMMUs", () => new LabHostBuilder().AddPciDevice("a", "0000:01:00.0", d => d.Group(5)).AddPciDevice("b", "0000:02:00.0", d => d.Group(5).Iommu(IommuKind.SmmuV3)),
            "b", "group", "devices of IOMMU group 5 sit behind different IOMMUs ('a' and 'b')" },
        { "IOMMU units sharing no page size (host campaign, seed 12098)", () => new LabHostBuilder()
                .AddPciDevice("a", "0000:01:00.0", d => d.WithIommuPageSizes(512UL << 20)).AddPciDevice("b", "0000:02:00.0"), "b", "iommu",
            "device 'b': its IOMMU unit's page sizes (0x40201000) share none with those of 'a' and the devices before it (0x20000000); a type1 container holding both would have no page size" },
        { "aperture off the page boundary", () => new LabHostBuilder().WithAperture(0, 0x1000), "host", "aperture",
            "aperture [0x0, 0x1000] does not start and end on a boundary of the IOMMU's smallest page 0x1000" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void Build_DescriptionBreakingARule_ThrowsNamingSubjectAndSetting(string what, Func<LabHostBuilder> describe, string subject, string setting, string message)
    {
        LabHostBuilder builder = describe();

        LabConfigurationException validated = Assert.Throws<LabConfigurationException>(builder.Validate);
        LabConfigurationException built = Assert.Throws<LabConfigurationException>(() => builder.Build());

        Assert.True((subject, setting, message) == (validated.Subject, validated.Setting, validated.Message), $"{what}: {validated.Subject} {validated.Setting} {validated.Message}");
        Assert.Equal(validated.Message, built.Message);
    }

    [Fact]
    public void Build_LimitsExactly_Builds()
    {
        LabHost host = new LabHostBuilder()
            .WithMemory(LabLimits.MaxMemoryBytes)
            .AddPciDevice("gpu", "0000:01:00.0", d => d.Bar(0, LabLimits.MaxMemoryBytes / 2).Bar(2, LabLimits.MinMemoryBarBytes).Bar(4, LabLimits.Max32BitBarBytes, is64Bit: false))
            .Build();

        Assert.Single(host.Devices);
        Assert.Empty(host.CheckInvariants());
    }

    [Fact]
    public void Build_FrameRunsAtTheBudget_Builds()
    {
        LabHost host = new LabHostBuilder().WithMemory(LabLimits.MaxFrameRuns * 4096).WithScatteredFrames(1).Build();

        Assert.Empty(host.CheckInvariants());
    }
}
