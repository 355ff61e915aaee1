using VfioLab.Abi;

namespace VfioLab.Scenarios.Conformance;

/// <summary>
/// What a scenario needs from a real Linux kernel beyond one process's system calls, so the same steps (decoded and
/// judged by the same code as on the model) run on the machine where the program runs
/// (<see cref="ScenarioConformance.RunOnRealKernel"/>). Implemented over libc by the <c>vfiolab conform</c> guest runner.
/// </summary>
public interface IRealKernel
{
    /// <summary>This process's system calls (VfioLab.Linux's <c>LinuxSyscalls</c>, or an agent process's).</summary>
    ISyscallSurface Syscalls { get; }

    /// <summary>Why this process cannot fork (a .NET process cannot), or null when <see cref="Fork"/> forks it.</summary>
    string? CannotFork { get; }

    /// <summary>fork(2) of this process: the child's pid, with the child as a kernel of its own in
    /// <paramref name="child"/> (same devices and groups), or -errno and null.</summary>
    /// <exception cref="NotSupportedException"><see cref="CannotFork"/> is not null.</exception>
    long Fork(out IRealKernel? child);

    /// <summary>A new process beside this one (not forked: nothing inherited), as a kernel of its own with the same
    /// devices and groups, for a scenario's second declared process; null when this machine cannot start one
    /// (<see cref="CannotFork"/> says why).</summary>
    IRealKernel? StartProcess();

    /// <summary>The group number on this machine of the scenario's IOMMU group <paramref name="scenarioGroup"/>, or
    /// null when the scenario's devices put none there.</summary>
    ulong? GroupOf(ulong scenarioGroup);

    /// <summary>The PCI address on this machine of the scenario's device address <paramref name="scenarioAddress"/>;
    /// any other name unchanged.</summary>
    string DeviceNameOf(string scenarioAddress);

    /// <summary>This process's <c>locked_vm</c> in bytes (<c>VmLck</c> of /proc/self/status).</summary>
    ulong LockedVmBytes();

    /// <summary>setrlimit(RLIMIT_MEMLOCK) to <paramref name="bytes"/> (soft and hard; <see cref="ulong.MaxValue"/> is
    /// unlimited): 0 or -errno.</summary>
    long SetMemlockLimit(ulong bytes);

    /// <summary>Raises or drops CAP_IPC_LOCK in the effective set of the calling thread (the one that makes every
    /// step's calls): 0 or -errno.</summary>
    long SetCapIpcLock(bool effective);

    /// <summary>The device behind <paramref name="deviceFd"/> (a VFIO device fd of the scenario's device
    /// <paramref name="device"/>, whose group is in the container <paramref name="containerFd"/>) DMA-writes
    /// <paramref name="data"/> at <paramref name="iova"/>. What the implementation needs to get the bytes into the
    /// device (a transient mapping of its own) must leave the container as it found it.</summary>
    RealDma DmaWrite(string device, int deviceFd, int containerFd, ulong iova, ReadOnlySpan<byte> data);

    /// <summary>The device DMA-reads <paramref name="size"/> bytes at <paramref name="iova"/>.</summary>
    RealDma DmaRead(string device, int deviceFd, int containerFd, ulong iova, int size);

    /// <summary>eventfd(2), non-blocking, in this process: the fd or -errno.</summary>
    long CreateEventFd();

    /// <summary>A non-blocking read of eventfd <paramref name="fd"/>: the count since the last read, or -errno (EAGAIN
    /// when none).</summary>
    long ReadEventFd(int fd);

    /// <summary>The device behind <paramref name="deviceFd"/> raises interrupt <paramref name="index"/> (<c>intx</c>,
    /// <c>msi</c>, <c>msix</c>, <c>err</c>, <c>req</c>) vector <paramref name="vector"/>; <paramref name="triggerFd"/> is the
    /// eventfd VFIO was last given as its trigger (-1 for none), waited on, not read. The device is left with the
    /// interrupt acknowledged.</summary>
    RealInterrupt RaiseInterrupt(string device, int deviceFd, string index, int vector, int triggerFd);
}
