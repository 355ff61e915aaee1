using VfioLab.Abi;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;

namespace VfioLab.Tests.Scenarios.Parsing;

public sealed class ParseFullScenarioTests
{
    [Fact]
    public void Parse_EveryStepKind_AllKindsPresent()
    {
        ScenarioDocument doc = ScenarioSamples.Parse(ScenarioSamples.Full);

        var kinds = doc.Steps.Select(s => s.Kind).ToHashSet();
        Assert.Equal(StepSchema.Kinds.Order(), kinds.Order());
        Assert.Equal(55, StepSchema.Kinds.Count);
        Assert.Equal(Enumerable.Range(0, doc.Steps.Count), doc.Steps.Select(s => s.Index));
    }

    [Fact]
    public void Parse_FullHost_TypedValues()
    {
        HostSpec host = ScenarioSamples.Parse(ScenarioSamples.Full).Host;

        Assert.Equal(64UL << 30, host.Memory);
        Assert.Equal(4096UL, host.PageSize);
        Assert.Equal(IommuHardware.VtD, host.Iommu);
        Assert.Equal([4096UL, 2UL << 20, 1UL << 30], host.IommuPageSizes!);
        Assert.Equal(0x7fffffffffUL, host.Aperture!.Last);
        ReservedRegionSpec region = Assert.Single(host.ReservedRegions);
        Assert.Equal((0xfee00000UL, 0xfeefffffUL, ReservedRegionKind.Msi), (region.Start, region.Last, region.Type));
        Assert.Equal(VfioLab.Lab.KernelProfiles.Seeds, host.Kernel);
        Assert.True(host.HasQuirk(VfioLab.Lab.KernelQuirks.UnmapOwnerCheck));
        Assert.Equal(new HostParams(65535, false, false, true), host.Params);
        Assert.Equal(new FrameLayoutSpec(FrameLayoutKind.Scattered, 16, 7), host.Frames);
    }

    [Fact]
    public void Parse_FullDevicesAndProcesses_TypedValues()
    {
        ScenarioDocument doc = ScenarioSamples.Parse(ScenarioSamples.Full);

        DeviceSpec gpu = doc.Devices[0];
        Assert.Equal(("gpu", "0000:01:00.0", DeviceDriverKind.VfioPci, 1), (gpu.Name, gpu.Address, gpu.Driver, gpu.Group!.Value));
        Assert.Equal(2, gpu.Bars.Count);
        Assert.Equal((1, 128UL << 30, true, true), (gpu.Bars[1].Index, gpu.Bars[1].Size, gpu.Bars[1].Prefetchable, gpu.Bars[1].Is64Bit));
        Assert.Equal(IommuHardware.SmmuV3, gpu.Iommu);
        Assert.False(gpu.Coherent);
        DeviceSpec vgpu = doc.Devices[1];
        Assert.Equal(DeviceDriverKind.Mdev, vgpu.Driver);
        Assert.True(vgpu.Misbehaving);
        Assert.Null(vgpu.Group);
        Assert.True(vgpu.IsolatedMsi);
        Assert.Equal(64UL << 30, doc.Processes[0].Memlock);
        Assert.True(doc.Processes[1].IsMemlockUnlimited);
        Assert.Equal("qemu", doc.DefaultProcess!.Name);
    }

    [Fact]
    public void Parse_StepAccessors_ReturnValidatedFields()
    {
        ScenarioDocument doc = ScenarioSamples.Parse(ScenarioSamples.Full);
        ScenarioStep unmap = doc.Steps.Single(s => s.Kind == "unmap_dma");

        Assert.Equal(1UL << 30, unmap.GetValue("size").Literal);
        Assert.Equal(["GET_DIRTY_BITMAP"], unmap.GetNames("flags"));
        StepArgs bitmap = unmap.GetMap("bitmap");
        ScenarioValue vaddr = bitmap.GetValue("vaddr");
        Assert.Equal(("ram", 1UL << 30, false), (vaddr.Reference, vaddr.Offset, vaddr.NegativeOffset));
        Assert.Equal(StepExpectationKind.Fields, unmap.Expect.Kind);
        Assert.Equal("size", Assert.Single(unmap.Expect.Fields!.Entries).Key);

        ScenarioStep mmap = doc.Steps[0];
        Assert.Equal(("ram", "hugetlb-2m"), (mmap.As, mmap.GetString("backing")));
        Assert.True(mmap.GetBool("populate", false));
        Assert.Equal("rw", mmap.GetString("prot"));

        ScenarioStep write = doc.Steps[2];
        Assert.Equal(new byte[] { 0xde, 0xad, 0xbe, 0xef }, write.GetBytes("data"));
        Assert.Equal(0xabUL, doc.Steps[3].GetNumber("fill", 0));

        ScenarioStep mapExists = doc.Steps.Where(s => s.Kind == "map_dma").ElementAt(1);
        Assert.Equal(StepExpectationKind.Errno, mapExists.Expect.Kind);
        Assert.Equal(Errno.EEXIST, mapExists.Expect.Errno);

        ScenarioStep ext = doc.Steps.Single(s => s.Kind == "check_extension");
        Assert.Equal("VFIO_TYPE1v2_IOMMU", ext.GetSymbol("extension").Name);
        ScenarioStep rawIoctl = doc.Steps.Where(s => s.Kind == "ioctl").ElementAt(1);
        Assert.Equal(new ScenarioSymbol(null, 0x3b71, rawIoctl.GetSymbol("request").Location), rawIoctl.GetSymbol("request"));
        Assert.Equal(32UL, doc.Steps.First(s => s.Kind == "ioctl").GetValue("buffer").Literal);

        Assert.Equal("group", Assert.Single(doc.Steps.Single(s => s.Kind == "pci_hot_reset").GetValues("groups")).Reference);
        Assert.Equal(StepExpectationKind.Fault, doc.Steps.Where(s => s.Kind == "dma").ElementAt(1).Expect.Kind);
        Assert.Equal(StepExpectationKind.Sigbus, doc.Steps.Where(s => s.Kind == "read").ElementAt(1).Expect.Kind);
        Assert.Equal(ProcessSpec.Unlimited, doc.Steps.Single(s => s.Kind == "set_rlimit").GetValue("memlock").Literal);
        Assert.Equal("child", doc.Steps.Single(s => s.Kind == "exit" && s.Process is not null).Process);
    }

    [Fact]
    public void Parse_CheckSteps_OneItemEach()
    {
        ScenarioStep[] checks = [.. ScenarioSamples.Parse(ScenarioSamples.Full).Steps.Where(s => s.Kind == "check")];

        Assert.All(checks, c => Assert.Single(c.Args.Names));
        Assert.Equal("qemu", checks[0].GetMap("locked_vm").GetString("process"));
        Assert.Equal(524288UL, checks[1].GetNumber("pinned_pages", 0));
        StepExpectation translate = checks[5].GetMap("translate").GetExpectation("expect");
        Assert.Equal("0x100001000", translate.Fields!.Get("phys")!.Text);
        Assert.Equal(StepExpectationKind.Fault, checks[6].GetMap("translate").GetExpectation("expect").Kind);
        Assert.Equal("clean", checks[7].GetString("invariants"));
    }

    [Fact]
    public void Parse_MinimalScenario_Defaults()
    {
        ScenarioDocument doc = ScenarioSamples.Parse("vfiolab: 1\nsteps: []\n");

        Assert.Equal("sample", doc.Name);
        Assert.Same(HostSpec.Default, doc.Host);
        Assert.Equal(16UL << 30, doc.Host.Memory);
        Assert.Empty(doc.Devices);
        Assert.Empty(doc.Steps);
        Assert.Null(doc.DefaultProcess);
    }

    [Fact]
    public void Parse_DefaultsOnDeviceAndProcess_DocumentedValues()
    {
        ScenarioDocument doc = ScenarioSamples.Parse(ScenarioSamples.WithSteps("- exit: {}"));

        DeviceSpec gpu = Assert.Single(doc.Devices);
        Assert.Equal((DeviceDriverKind.VfioPci, true, false, true), (gpu.Driver, gpu.IsolatedMsi, gpu.Misbehaving, gpu.Coherent));
        Assert.Null(gpu.Group);
        ProcessSpec qemu = Assert.Single(doc.Processes);
        Assert.Equal((ProcessSpec.DefaultMemlock, false), (qemu.Memlock, qemu.CapIpcLock));
        Assert.Equal(StepExpectationKind.Ok, doc.Steps[0].Expect.Kind);
    }

    [Fact]
    public void GetString_OnValueField_ThrowsInvalidOperation()
    {
        ScenarioStep mmap = ScenarioSamples.Parse(ScenarioSamples.Full).Steps[0];

        Assert.Throws<InvalidOperationException>(() => mmap.GetString("size"));
        Assert.Throws<InvalidOperationException>(() => mmap.GetValue("at"));
    }
}
