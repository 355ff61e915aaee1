using VfioLab.Abi;
using VfioLab.Linux;
using VfioLab.Scenarios.Conformance;

namespace VfioLab.Cli.Commands.Conform;

/// <summary>
/// The guest's kernel as a scenario's real kernel (<see cref="IRealKernel"/>): the system calls of this process through
/// <see cref="LinuxSyscalls"/>, or of an agent process (<see cref="AgentProcess"/>, one that can fork: its children are
/// kernels of their own), the scenario's devices and groups mapped to the vfio-pci devices the rig bound, and the edu's
/// DMA engine for <c>dma</c> steps.
/// </summary>
/// <remarks>
/// The edu's buffer is reachable only by DMA, so each <c>dma</c> step goes through a staging page of this runner's
/// own: mapped at <see cref="StagingIova"/> in the device's container for the step and unmapped before it returns, so
/// the container, its DMA slots and locked_vm are as the step found them. A step the staging mapping cannot be made
/// for (the IOVA taken, the limit reached) is model-only, with the errno.
/// </remarks>
internal sealed class LinuxRealKernel : IRealKernel
{
    private readonly ISyscallSurface _sys;
    private readonly AgentProcess? _agent;
    private readonly IReadOnlyDictionary<string, string> _devices;
    private readonly IReadOnlyDictionary<ulong, ulong> _groups;

    /// <summary>This process as the scenario's process.</summary>
    public LinuxRealKernel(LinuxSyscalls sys, IReadOnlyDictionary<string, string> devices, IReadOnlyDictionary<ulong, ulong> groups)
        : this((ISyscallSurface)sys, devices, groups)
    {
    }

    /// <summary>An agent process as the scenario's process.</summary>
    public LinuxRealKernel(AgentProcess agent, IReadOnlyDictionary<string, string> devices, IReadOnlyDictionary<ulong, ulong> groups)
        : this((ISyscallSurface)agent, devices, groups)
    {
        _agent = agent;
    }

    private LinuxRealKernel(ISyscallSurface sys, IReadOnlyDictionary<string, string> devices, IReadOnlyDictionary<ulong, ulong> groups)
    {
        _sys = sys;
        _devices = devices;
        _groups = groups;
    }

    /// <summary>The staging page's IOVA: the last page the edu's 28-bit mask reaches; suite scenarios leave it free.</summary>
    public const ulong StagingIova = EduDevice.DmaAddressLimit - PageSize;

    private const ulong PageSize = 0x1000;

    private static readonly TimeSpan DmaTimeout = TimeSpan.FromSeconds(60);

    // How long an interrupt may take to reach its eventfd before it counts as not delivered (a masked or disabled one
    // never does), and how long one with no trigger is given to do whatever it would.
    private static readonly TimeSpan InterruptWait = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan InterruptSettle = TimeSpan.FromMilliseconds(100);

    private const uint InterruptStatusBit = 0x1;

    public ISyscallSurface Syscalls => _sys;

    public string? CannotFork => _agent is null ? "the runner is a .NET process, which cannot fork and go on running the scenario (the rig's agent can: a scenario with a fork or more than one process runs its processes in agents)" : null;

    public long Fork(out IRealKernel? child)
    {
        if (_agent is null)
        {
            throw new NotSupportedException(CannotFork);
        }
        child = null;
        long pid = _agent.Fork(out AgentProcess? forked);
        if (forked is not null)
        {
            child = new LinuxRealKernel(forked, _devices, _groups);
        }
        return pid;
    }

    public IRealKernel? StartProcess() => _agent is null ? null : new LinuxRealKernel(_agent.Host.Start(), _devices, _groups);

    public ulong? GroupOf(ulong scenarioGroup) => _groups.TryGetValue(scenarioGroup, out ulong g) ? g : null;

    public string DeviceNameOf(string scenarioAddress) => _devices.TryGetValue(scenarioAddress, out string? a) ? a : scenarioAddress;

    public ulong LockedVmBytes()
    {
        if (_agent is null)
        {
            return LinuxProcess.LockedVmBytes();
        }
        long bytes = _agent.LockedVmBytes();
        return bytes >= 0 ? (ulong)bytes : throw new IOException($"VmLck of agent {_agent.Pid}: {ErrnoExtensions.FromReturn(bytes)}");
    }

    public long SetMemlockLimit(ulong bytes) => _agent?.SetMemlockLimit(bytes) ?? LinuxProcess.SetMemlockLimit(bytes);

    public long SetCapIpcLock(bool effective) => _agent?.SetCapIpcLock(effective) ?? LinuxProcess.SetCapIpcLock(effective);

    public long CreateEventFd() => _agent?.CreateEventFd() ?? ((LinuxSyscalls)_sys).CreateEventFd();

    public long ReadEventFd(int fd) => _agent?.ReadEventFd(fd) ?? EventFd.Read(fd);

    // The edu raises one interrupt line: INTx, or its one MSI vector once MSI is enabled (VFIO enables it when MSI gets
    // a trigger), with bus mastering on, as for its DMA. It is waited for on the trigger eventfd (interrupts under TCG arrive after the register write
    // returns), then acknowledged, so a level INTx is not left asserted for the next step.
    public RealInterrupt RaiseInterrupt(string device, int deviceFd, string index, int vector, int triggerFd)
    {
        if (index is not ("intx" or "msi") || vector != 0)
        {
            return RealInterrupt.Cannot($"the edu raises INTx or MSI vector 0, not {index} vector {vector}");
        }
        var edu = new EduDevice(_sys, deviceFd, DeviceNameOf(device));
        if (edu.Ident != EduDevice.ExpectedIdent)
        {
            return RealInterrupt.Cannot($"{device} is not an edu (ident 0x{edu.Ident:x8})");
        }
        // An MSI is a memory write by the device: with bus mastering off (vfio-pci leaves it off) it goes nowhere.
        edu.EnableBusMaster();
        edu.RaiseInterrupt(InterruptStatusBit);
        bool delivered = triggerFd >= 0 && (_agent?.WaitReadable(triggerFd, InterruptWait) ?? EventFd.WaitSignalled(triggerFd, InterruptWait));
        if (triggerFd < 0)
        {
            Thread.Sleep(InterruptSettle);
        }
        edu.AcknowledgeInterrupt(InterruptStatusBit);
        return new RealInterrupt(delivered, null);
    }

    public RealDma DmaWrite(string device, int deviceFd, int containerFd, ulong iova, ReadOnlySpan<byte> data)
    {
        byte[] bytes = data.ToArray();
        return Staged(device, deviceFd, containerFd, iova, (ulong)bytes.Length, (edu, stage) =>
        {
            Check(_sys.WriteMemory(stage, bytes), "write the staging page");
            edu.CopyToDevice(StagingIova, 0, bytes.Length, DmaTimeout);
            edu.CopyFromDevice(0, iova, bytes.Length, DmaTimeout);
            return [];
        });
    }

    public RealDma DmaRead(string device, int deviceFd, int containerFd, ulong iova, int size) =>
        Staged(device, deviceFd, containerFd, iova, (ulong)size, (edu, stage) =>
        {
            edu.CopyToDevice(iova, 0, size, DmaTimeout);
            edu.CopyFromDevice(0, StagingIova, size, DmaTimeout);
            byte[] seen = new byte[size];
            Check(_sys.ReadMemory(stage, seen), "read the staging page");
            return seen;
        });

    private RealDma Staged(string device, int deviceFd, int containerFd, ulong iova, ulong size, Func<EduDevice, ulong, byte[]> move)
    {
        if (EduDevice.CannotMove(iova, size) is { } reason)
        {
            return RealDma.Cannot(reason);
        }
        if (iova < StagingIova + PageSize && StagingIova < iova + size)
        {
            return RealDma.Cannot($"iova 0x{iova:x} overlaps the runner's staging page at 0x{StagingIova:x}");
        }
        var edu = new EduDevice(_sys, deviceFd, DeviceNameOf(device));
        if (edu.Ident != EduDevice.ExpectedIdent)
        {
            return RealDma.Cannot($"{device} is not an edu (ident 0x{edu.Ident:x8})");
        }
        edu.EnableBusMaster();
        // The staging page is this runner's, not the scenario's: populated (so its charge is taken by the mapping and
        // dropped by the unmap alone) and released before the step returns.
        long stage = _sys.Mmap(0, PageSize, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.Populate, -1, 0);
        if (stage < 0)
        {
            return RealDma.Cannot($"mmap of the staging page: {ErrnoExtensions.FromReturn(stage)}");
        }
        try
        {
            byte[] map = AbiStruct.ToArray(new VfioIommuType1DmaMap
            {
                Argsz = VfioIommuType1DmaMap.SizeOf,
                Flags = DmaMapFlags.Read | DmaMapFlags.Write,
                Vaddr = (ulong)stage,
                Iova = StagingIova,
                Size = PageSize,
            });
            long ret = _sys.Ioctl(containerFd, VfioIoctl.IommuMapDma, map);
            if (ret < 0)
            {
                return RealDma.Cannot($"the staging mapping at iova 0x{StagingIova:x}: {ErrnoExtensions.FromReturn(ret)}");
            }
            try
            {
                return new RealDma(move(edu, (ulong)stage), null);
            }
            finally
            {
                byte[] unmap = AbiStruct.ToArray(new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Iova = StagingIova, Size = PageSize });
                Check(_sys.Ioctl(containerFd, VfioIoctl.IommuUnmapDma, unmap), "unmap the staging page");
            }
        }
        finally
        {
            _sys.Munmap((ulong)stage, PageSize);
        }
    }

    private static void Check(long ret, string what)
    {
        if (ret < 0)
        {
            throw new IOException($"{what}: {ErrnoExtensions.FromReturn(ret)}");
        }
    }
}
