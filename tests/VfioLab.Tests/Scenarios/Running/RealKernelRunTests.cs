using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Conformance;

namespace VfioLab.Tests.Scenarios.Running;

/// <summary>
/// <see cref="ScenarioConformance.RunOnRealKernel"/> against a stand-in "real" machine: a second simulated host whose
/// device sits at another address and group number, reached only through <see cref="IRealKernel"/>. The steps must
/// run through the same step code as on the model, with group paths and device names translated, what only the model
/// can answer reported as model-only (never run), and locked_vm, RLIMIT_MEMLOCK and DMA taken from the machine.
/// </summary>
public sealed class RealKernelRunTests
{
    private const string Scenario = """
        vfiolab: 1
        name: stand-in
        host: { memory: 1GiB, iommu: vt-d }
        devices:
          - { name: edu, address: "0000:01:00.0", group: 2, bars: [ { index: 0, size: 1MiB } ] }
        processes:
          - { name: vmm, memlock: 1MiB }
          - { name: other }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/2, as: g }
          - group_set_container: { fd: g, container: c }
          - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
          - get_device_fd: { fd: g, name: "0000:01:00.0", as: dev }
          - mmap: { size: 64KiB, as: ram }
          - write: { vaddr: ram, fill: 0x5a, size: 16 }
          - map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 64KiB }
          - check: { locked_vm: { process: vmm, bytes: 64KiB } }
          - dma: { device: edu, op: read, iova: 0x100000, size: 4, expect: { data: "5a 5a 5a 5a" } }
          - dma: { device: edu, op: write, iova: 0x100010, data: "01 02" }
          - read: { vaddr: ram+0x10, size: 2, expect: { data: "01 02" } }
          - dma: { device: edu, op: write, iova: 0x900000, data: "01", expect: fault }
          - check: { iommu_entries: { device: edu, count: 16 } }
          - check: { invariants: clean }
          - mmap: { size: 4KiB, process: other, as: x }
          - fork: { as: child }
          - set_rlimit: { memlock: 64KiB }
          - map_dma: { fd: c, iova: 0x200000, vaddr: ram, size: 4KiB, expect: ENOMEM }
          - run_deferred_work: {}
        """;

    [Fact]
    public void StepsRunOnTheMachine_WithGroupsAndNamesTranslated()
    {
        var machine = new StandInKernel();
        ScenarioOutcome outcome = ScenarioConformance.RunOnRealKernel(ScenarioDocument.Parse(Scenario, "stand-in.yaml"), machine);

        Assert.All(outcome.Steps.Where(s => s.ModelOnly is null), s => Assert.True(s.Passed, s.ToString()));
        Assert.Contains("/dev/vfio/7", machine.Opened);
        // What the scenario left (the container, its mapping) is released at the end, as a process exit would.
        Assert.Equal(0UL, machine.Host.PinnedPages);
        Assert.True(machine.CapIpcLock);
    }

    [Fact]
    public void WhatOnlyTheModelAnswers_IsReportedModelOnly_NotRun()
    {
        ScenarioOutcome outcome = ScenarioConformance.RunOnRealKernel(ScenarioDocument.Parse(Scenario, "stand-in.yaml"), new StandInKernel());

        string[] modelOnly = [.. outcome.Steps.Where(s => s.ModelOnly is not null).Select(s => s.Kind)];
        Assert.Equal(["dma", "check", "check", "mmap", "fork", "run_deferred_work"], modelOnly);
        StepReport fault = outcome.Steps.Single(s => s.Kind == "dma" && s.ModelOnly is not null);
        Assert.Contains("whether it faulted", fault.ModelOnly, StringComparison.Ordinal);
        Assert.Null(fault.Result);
        Assert.Contains("only the scenario's first process", outcome.Steps.Single(s => s.Kind == "mmap" && s.ModelOnly is not null).ModelOnly, StringComparison.Ordinal);
    }

    private const string PciScenario = """
        vfiolab: 1
        name: stand-in-pci
        host: { memory: 1GiB, iommu: vt-d }
        devices:
          - { name: edu, address: "0000:01:00.0", group: 2, bars: [ { index: 0, size: 1MiB } ] }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/2, as: g }
          - group_set_container: { fd: g, container: c }
          - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
          - get_device_fd: { fd: g, name: "0000:01:00.0", as: dev }
          - device_get_irq_info: { fd: dev, index: 1, expect: { count: 1, eventfd: true } }
          - device_get_irq_info: { fd: dev, index: 5, expect: EINVAL }
          - region_read: { fd: dev, index: 7, offset: 0, size: 2, expect: { data: "f4 1a" } }
          - region_write: { fd: dev, index: 7, offset: 0x10, data: "ff ff ff ff", expect: { result: 4 } }
          - region_read: { fd: dev, index: 7, offset: 0x10, size: 4, expect: { data: "04 00 f0 ff" } }
          - region_read: { fd: dev, index: 7, offset: 0x1000, size: 4, expect: EFAULT }
          - set_irqs: { fd: dev, index: 0, flags: [DATA_NONE, ACTION_TRIGGER], count: 0, expect: EINVAL }
          - set_irqs: { fd: dev, index: 9, flags: [DATA_NONE, ACTION_TRIGGER], count: 0, expect: EINVAL }
          - device_feature: { fd: dev, feature: 3, flags: [PROBE, SET] }
          - eventfd: { as: efd }
          - eventfd_read: { fd: efd, expect: EAGAIN }
          - set_irqs: { fd: dev, index: 1, flags: [DATA_EVENTFD, ACTION_TRIGGER], eventfds: [efd] }
          - device_interrupt: { device: edu, index: msi, expect: { delivered: true } }
          - eventfd_read: { fd: efd, expect: { count: 1 } }
          - device_interrupt: { device: edu, index: msix, expect: { delivered: false } }
          - set_irqs: { fd: dev, index: 1, flags: [DATA_NONE, ACTION_TRIGGER], count: 0 }
          - device_interrupt: { device: edu, index: msi, expect: { delivered: false } }
        """;

    [Fact]
    public void VfioPciSteps_RunThroughTheMachinesDeviceFd_EventfdsAndInterruptsToo()
    {
        var machine = new StandInKernel();
        ScenarioOutcome outcome = ScenarioConformance.RunOnRealKernel(ScenarioDocument.Parse(PciScenario, "stand-in-pci.yaml"), machine);

        Assert.All(outcome.Steps.Where(s => s.ModelOnly is null), s => Assert.True(s.Passed, s.ToString()));
        // The eventfd is the machine's, and the interrupt waits on the trigger the machine's SET_IRQS was given.
        (int trigger, string index, int vector) = Assert.Single(machine.Raised);
        Assert.Equal(("msi", 0), (index, vector));
        Assert.Equal(trigger, (int)outcome.Steps.First(s => s.Kind == "eventfd").Result!.Fields["fd"].Unsigned);
        StepReport msix = Assert.Single(outcome.Steps, s => s.ModelOnly is not null);
        Assert.Equal("device_interrupt", msix.Kind);
        Assert.Contains("cannot raise", msix.ModelOnly, StringComparison.Ordinal);
        // Each went to the machine's device fd (the model's process opened nothing, so its fd would be EBADF).
        Assert.Equal(6, outcome.Steps.Count(s => s.Kind is "device_get_irq_info" or "region_read" or "region_write" && s.Passed));
    }

    private const string ForkScenario = """
        vfiolab: 1
        name: stand-in-fork
        host: { memory: 1GiB, iommu: vt-d }
        devices:
          - { name: edu, address: "0000:01:00.0", group: 2, bars: [ { index: 0, size: 1MiB } ] }
        processes:
          - { name: vmm, memlock: 1MiB }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/2, as: g }
          - group_set_container: { fd: g, container: c }
          - set_iommu: { fd: c, type: VFIO_TYPE1v2_IOMMU }
          - get_device_fd: { fd: g, name: "0000:01:00.0", as: dev }
          - mmap: { size: 64KiB, as: ram }
          - write: { vaddr: ram, fill: 0x4d, size: 64KiB }
          - map_dma: { fd: c, iova: 0x100000, vaddr: ram, size: 64KiB }
          - fork: { as: child }
          - check: { locked_vm: { process: child, bytes: 0 } }
          - map_dma: { process: child, fd: c, iova: 0x200000, vaddr: ram, size: 8KiB }
          - check: { locked_vm: { process: child, bytes: 8KiB } }
          - check: { locked_vm: { process: vmm, bytes: 64KiB } }
          - close: { process: child, fd: dev }
          - dma: { device: edu, op: read, iova: 0x100000, size: 2, expect: { data: "4d 4d" } }
          - eventfd: { process: child, as: e }
          - exit: { process: child }
          - check: { locked_vm: { process: child, bytes: 0 } }
          - map_dma: { process: child, fd: c, iova: 0x300000, vaddr: ram, size: 4KiB }
          - unmap_dma: { fd: c, iova: 0, size: 0, flags: [ALL], expect: { size: 72KiB } }
          - exit: {}
          - check: { locked_vm: { process: vmm, bytes: 0 } }
        """;

    [Fact]
    public void AForkableKernel_RunsTheForkedChildsSteps_OnTheChild()
    {
        var machine = new StandInKernel { Forkable = true };
        ScenarioOutcome outcome = ScenarioConformance.RunOnRealKernel(ScenarioDocument.Parse(ForkScenario, "stand-in-fork.yaml"), machine);

        Assert.All(outcome.Steps.Where(s => s.ModelOnly is null), s => Assert.True(s.Passed, s.ToString()));
        StandInKernel child = Assert.Single(machine.Children);
        // The fork reports the machine's pid, and the child's MAP charged the child's mm on the machine.
        Assert.Equal((ulong)child.Process.Pid, outcome.Steps.Single(s => s.Kind == "fork").Result!.Fields["pid"].Unsigned);
        Assert.False(child.Process.IsAlive);
        Assert.False(machine.Process.IsAlive);
        // The child's close of its copy of the device fd leaves the parent's in use: the DMA after it still runs.
        Assert.Null(outcome.Steps.Single(s => s.Kind == "dma").ModelOnly);
        string[] modelOnly = [.. outcome.Steps.Where(s => s.ModelOnly is not null).Select(s => $"{s.Kind}: {s.ModelOnly}")];
        Assert.Equal(4, modelOnly.Length);
        Assert.Contains("eventfd", modelOnly[0], StringComparison.Ordinal);
        Assert.Contains("it exited", modelOnly[1], StringComparison.Ordinal);
        Assert.StartsWith("map_dma: process child exited", modelOnly[2], StringComparison.Ordinal);
        Assert.Contains("locked_vm of vmm: it exited", modelOnly[3], StringComparison.Ordinal);
        Assert.Equal(0UL, machine.Host.PinnedPages);
    }

    [Fact]
    public void AKernelThatCannotFork_ReportsTheForkAndTheChildsSteps_ModelOnly()
    {
        ScenarioOutcome outcome = ScenarioConformance.RunOnRealKernel(ScenarioDocument.Parse(ForkScenario, "stand-in-fork.yaml"), new StandInKernel());

        StepReport fork = outcome.Steps.Single(s => s.Kind == "fork");
        Assert.Equal("fork: the stand-in's runner cannot fork", fork.ModelOnly);
        Assert.All(outcome.Steps.Where(s => s.Process == "child"), s => Assert.Contains("only the scenario's first process", s.ModelOnly, StringComparison.Ordinal));
    }

    private const string TwoProcessScenario = """
        vfiolab: 1
        name: stand-in-two
        host: { memory: 1GiB, iommu: vt-d }
        devices:
          - { name: edu, address: "0000:01:00.0", group: 2, bars: [ { index: 0, size: 1MiB } ] }
        processes:
          - { name: vmm, memlock: 1MiB }
          - { name: other, memlock: 16KiB }
        steps:
          - open: { path: /dev/vfio/vfio, as: c }
          - open: { path: /dev/vfio/2, as: g }
          - open: { process: other, path: /dev/vfio/2, expect: EBUSY }
          - open: { process: other, path: /dev/vfio/vfio, as: oc }
          - mmap: { process: other, size: 64KiB, as: x }
          - check: { locked_vm: { process: other, bytes: 0 } }
        """;

    [Fact]
    public void AForkableKernel_RunsASecondDeclaredProcess_AsAProcessOfItsOwn_WithItsLimit()
    {
        var machine = new StandInKernel { Forkable = true };
        ScenarioOutcome outcome = ScenarioConformance.RunOnRealKernel(ScenarioDocument.Parse(TwoProcessScenario, "stand-in-two.yaml"), machine);

        Assert.All(outcome.Steps, s => Assert.Null(s.ModelOnly));
        Assert.All(outcome.Steps, s => Assert.True(s.Passed, s.ToString()));
        StandInKernel other = Assert.Single(machine.Children);
        Assert.Equal(16UL << 10, other.Process.MemlockLimitBytes);
        Assert.False(other.Process.IsAlive);
    }

    [Fact]
    public void TheMachinesLockedVm_JudgesTheCheck()
    {
        var machine = new StandInKernel { LockedVmOffset = 4096 };
        ScenarioOutcome outcome = ScenarioConformance.RunOnRealKernel(ScenarioDocument.Parse(Scenario, "stand-in.yaml"), machine);

        // The runner counts from the machine's locked_vm at the start (the runtime's own), so an offset present from
        // the start changes nothing.
        Assert.True(outcome.Steps.Single(s => s.Kind == "check" && s.ModelOnly is null).Passed);
    }

    [Fact]
    public void ForMachine_RunsTheModelUnderTheProfileWithTheMachinesAperture()
    {
        ScenarioDocument doc = ScenarioConformance.ForMachine(ScenarioDocument.Parse(Scenario, "stand-in.yaml"), KernelProfiles.Linux612,
            (1UL << 39) - 1, [4096, 2UL << 20, 1UL << 30]);
        PreparedScenario prepared = ScenarioRunner.Prepare(doc);

        Assert.Equal(KernelProfiles.Linux612, prepared.Host.KernelProfile);
        Assert.Throws<ArgumentException>(() => ScenarioConformance.ForMachine(doc, "linux-5.4", 0, [4096]));
    }

    [Fact]
    public void Describe_GivesTheTopologyTheRigNeeds()
    {
        ScenarioTopology t = ScenarioConformance.Describe(ScenarioDocument.Parse(Scenario, "stand-in.yaml"));

        Assert.Equal("vt-d", t.Iommu);
        Assert.Equal(2, t.Processes);
        TopologyDevice d = Assert.Single(t.Devices);
        Assert.Equal(("0000:01:00.0", 2, "vfio-pci"), (d.Address, d.Group!.Value, d.Driver));
        Assert.Equal([new KeyValuePair<int, ulong>(0, 1UL << 20)], d.Bars);
        Assert.False(t.UsesHugeTlb2MiB);
    }

    /// <summary>A simulated host standing in for a real one: its device at 0000:00:10.0 in group 7. With
    /// <see cref="Forkable"/> its process forks (as the rig's agent does), each child a stand-in of its own.</summary>
    private sealed class StandInKernel : IRealKernel
    {
        private readonly LabHost _host;
        private readonly RecordingSyscalls _sys;

        public StandInKernel()
        {
            _host = new LabHostBuilder().WithMemory(1UL << 30)
                .AddPciDevice("edu", "0000:00:10.0", o => o.Bar(0, 1UL << 20).Group(7))
                .AddProcess("runner", LabHostBuilder.Unlimited)
                .Build();
            Process = _host.Process("runner");
            _sys = new RecordingSyscalls(Process.Syscalls, Opened);
        }

        private StandInKernel(StandInKernel parent, LabProcess child)
        {
            _host = parent._host;
            Process = child;
            Opened = parent.Opened;
            Forkable = true;
            _sys = new RecordingSyscalls(child.Syscalls, Opened);
        }

        public bool Forkable { get; init; }

        /// <summary>Each child forked, in order.</summary>
        public List<StandInKernel> Children { get; } = [];

        public string? CannotFork => Forkable ? null : "the stand-in's runner cannot fork";

        public IRealKernel? StartProcess()
        {
            if (!Forkable)
            {
                return null;
            }
            var kernel = new StandInKernel(this, _host.Spawn($"started-{Children.Count}"));
            Children.Add(kernel);
            return kernel;
        }

        public long Fork(out IRealKernel? child)
        {
            if (!Forkable)
            {
                throw new NotSupportedException(CannotFork);
            }
            Errno e = Process.TryFork(out LabProcess? forked, Process.Name);
            if (e != Errno.None)
            {
                child = null;
                return e.AsReturn();
            }
            var kernel = new StandInKernel(this, forked!);
            Children.Add(kernel);
            child = kernel;
            return forked!.Pid;
        }

        public LabProcess Process { get; }

        public LabHost Host => _host;

        public List<string> Opened { get; } = [];

        public ulong LockedVmOffset { get; init; }

        public bool CapIpcLock { get; private set; } = true;

        public ISyscallSurface Syscalls => _sys;

        public ulong? GroupOf(ulong scenarioGroup) => scenarioGroup == 2 ? 7 : null;

        public string DeviceNameOf(string scenarioAddress) => scenarioAddress == "0000:01:00.0" ? "0000:00:10.0" : scenarioAddress;

        public ulong LockedVmBytes() => Process.LockedVmBytes + LockedVmOffset;

        public long SetMemlockLimit(ulong bytes)
        {
            Process.MemlockLimitBytes = bytes;
            return 0;
        }

        public long SetCapIpcLock(bool effective)
        {
            CapIpcLock = effective;
            return 0;
        }

        public RealDma DmaWrite(string device, int deviceFd, int containerFd, ulong iova, ReadOnlySpan<byte> data)
        {
            _host.Device(device).DmaWrite(iova, data);
            return new RealDma([], null);
        }

        public RealDma DmaRead(string device, int deviceFd, int containerFd, ulong iova, int size) =>
            new(_host.Device(device).DmaRead(iova, (ulong)size).Data, null);

        /// <summary>Each interrupt raised: the trigger eventfd it was given, its index and vector.</summary>
        public List<(int TriggerFd, string Index, int Vector)> Raised { get; } = [];

        public long CreateEventFd() => Process.CreateEventFd();

        public long ReadEventFd(int fd) => Process.ReadEventFd(fd);

        public RealInterrupt RaiseInterrupt(string device, int deviceFd, string index, int vector, int triggerFd)
        {
            if (index == "msix")
            {
                return RealInterrupt.Cannot("the stand-in cannot raise MSI-X");
            }
            if (triggerFd >= 0)
            {
                Raised.Add((triggerFd, index, vector));
            }
            bool delivered = _host.Device(device).RaiseInterrupt(index == "msi" ? LabIrqIndex.Msi : LabIrqIndex.Intx, vector);
            return new RealInterrupt(delivered, null);
        }
    }

    /// <summary>The stand-in's syscalls, recording the paths opened.</summary>
    private sealed class RecordingSyscalls(ISyscallSurface inner, List<string> opened) : ISyscallSurface
    {
        public int Pid => inner.Pid;

        public int Open(string path)
        {
            opened.Add(path);
            return inner.Open(path);
        }

        public int Close(int fd) => inner.Close(fd);

        public long Ioctl(int fd, uint request, Span<byte> arg) => inner.Ioctl(fd, request, arg);

        public long Ioctl(int fd, uint request, ulong value) => inner.Ioctl(fd, request, value);

        public long Pread(int fd, Span<byte> destination, ulong offset) => inner.Pread(fd, destination, offset);

        public long Pwrite(int fd, ReadOnlySpan<byte> source, ulong offset) => inner.Pwrite(fd, source, offset);

        public long Mmap(ulong address, ulong length, MemoryProtection protection, MmapFlags flags, int fd, ulong offset) =>
            inner.Mmap(address, length, protection, flags, fd, offset);

        public int Munmap(ulong address, ulong length) => inner.Munmap(address, length);

        public int ReadMemory(ulong address, Span<byte> destination) => inner.ReadMemory(address, destination);

        public int WriteMemory(ulong address, ReadOnlySpan<byte> source) => inner.WriteMemory(address, source);

        public ISyscallSurface Fork() => inner.Fork();

        public void Exit() => inner.Exit();
    }
}
