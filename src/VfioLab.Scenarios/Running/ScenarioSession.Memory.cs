using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

internal sealed partial class ScenarioSession
{
    /// <summary>Largest buffer a single read/write step may move, so a typo cannot exhaust the host.</summary>
    private const ulong MaxTransfer = 64UL << 20;

    private StepResult Mmap(ScenarioStep step)
    {
        LabProcess p = ProcessOf(step);
        ulong size = Value(step, "size");
        ulong at = ValueOr(step, "at", 0);
        string backing = step.Args.GetStringOrNull("backing") ?? "anonymous";
        MemoryProtection prot = Protection(step.Args.GetStringOrNull("prot") ?? "rw", step);
        long ret;
        if (backing == "pfnmap")
        {
            // Some other driver's MMIO (remap_pfn_range convention): pfns beyond RAM, or refcounted RAM pages.
            bool refcounted = step.Args.GetBool("refcounted", false);
            if (!p.IsAlive)
            {
                throw new StepFailure(step.Location, $"process {p.Name} has exited");
            }
            ret = p.MmapForeignMmio(at, size, prot, refcounted);
        }
        else
        {
            MmapFlags flags = backing switch
            {
                "shared" => MmapFlags.Shared | MmapFlags.Anonymous,
                "hugetlb-2m" => MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge2MiB,
                "hugetlb-1g" => MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge1GiB,
                "anonymous" => MmapFlags.Private | MmapFlags.Anonymous,
                _ => throw new StepFailure(step.Args.GetLocation("backing"), $"unknown backing '{backing}' (anonymous, shared, hugetlb-2m, hugetlb-1g, pfnmap)"),
            };
            if (step.Args.GetBool("populate", false))
            {
                flags |= MmapFlags.Populate;
            }
            if (at != 0)
            {
                flags |= MmapFlags.Fixed;
            }
            ret = SyscallsOf(p).Mmap(at, size, prot, flags, -1, 0);
        }
        return AddressResult(ret);
    }

    private StepResult MmapRegion(ScenarioStep step)
    {
        LabProcess p = ProcessOf(step);
        int fd = Fd(step, "device_fd");
        ulong index = Value(step, "index");
        ulong offset = ValueOr(step, "offset", 0);
        ulong size = Value(step, "size");
        MemoryProtection prot = Protection(step.Args.GetStringOrNull("prot") ?? "rw", step);
        if (index > uint.MaxValue)
        {
            throw new StepFailure(step.Args.GetLocation("index"), $"region index 0x{index:x} is out of range");
        }
        ulong fileOffset = VfioPci.IndexToOffset((uint)index) + offset;
        // at: a fixed address (MAP_FIXED), as a recorded client's mapping is replayed where the client had it.
        ulong at = ValueOr(step, "at", 0);
        long ret = SyscallsOf(p).Mmap(at, size, prot, at != 0 ? MmapFlags.Shared | MmapFlags.Fixed : MmapFlags.Shared, fd, fileOffset);
        return AddressResult(ret);
    }

    private StepResult Munmap(ScenarioStep step) =>
        Syscall(SyscallsOf(ProcessOf(step)).Munmap(Value(step, "vaddr"), Value(step, "size")));

    private StepResult WriteMemory(ScenarioStep step)
    {
        LabProcess p = ProcessOf(step);
        ulong vaddr = Value(step, "vaddr");
        byte[] data = DataOf(step);
        int ret = SyscallsOf(p).WriteMemory(vaddr, data);
        return MemoryAccessResult(ret, null);
    }

    private StepResult ReadMemory(ScenarioStep step)
    {
        LabProcess p = ProcessOf(step);
        ulong vaddr = Value(step, "vaddr");
        ulong size = Value(step, "size");
        if (size > MaxTransfer)
        {
            throw new StepFailure(step.Args.GetLocation("size"), $"read of 0x{size:x} bytes exceeds the 64 MiB a step may move");
        }
        byte[] buffer = new byte[size];
        int ret = SyscallsOf(p).ReadMemory(vaddr, buffer);
        return MemoryAccessResult(ret, buffer);
    }

    private StepResult Fork(ScenarioStep step)
    {
        LabProcess parent = ProcessOf(step);
        // The child keeps its parent's name, as fork keeps comm; the session knows it by its as: binding.
        Errno e = parent.TryFork(out LabProcess? child, parent.Name);
        if (e != Errno.None)
        {
            return Syscall(e.AsReturn());
        }
        string name = step.As ?? $"{parent.Name}-child-{child!.Pid}";
        long pid = child!.Pid;
        if (_real is not null)
        {
            // On a real kernel the model's fork above only names the child for later steps: the real process forks.
            pid = _real.Fork(NameOf(parent), name);
            if (pid < 0)
            {
                return Syscall(pid);
            }
        }
        _processes[name] = child!;
        StepResult r = Syscall(pid);
        r.Set(BindField, (ulong)pid);
        r.Set("pid", (ulong)pid);
        return r;
    }

    private StepResult Exit(ScenarioStep step)
    {
        if (_real is not null)
        {
            _real.Exit(step.Process);
            return Syscall(0);
        }
        LabProcess p = ProcessOf(step);
        bool alive = p.IsAlive;
        p.Exit();
        return Syscall(alive ? 0 : Errno.ESRCH.AsReturn());
    }

    /// <summary><c>exec</c>: the process execs a new program (same pid and fds, a fresh address space with
    /// <c>locked_vm</c> 0); ESRCH once it exited. Names bound to its old memory are stale afterwards.</summary>
    private StepResult Exec(ScenarioStep step) => Syscall(ProcessOf(step).Exec().AsReturn());

    /// <summary><c>hold_mmap_lock</c> / <c>release_mmap_lock</c>: another thread of the process takes its mmap lock
    /// for read and keeps it until released (<see cref="LabProcess.HoldMmapLock"/>), the deterministic contention seed 004
    /// needs. ESRCH once the process exited; releasing with no hold is a step failure.</summary>
    private StepResult HoldMmapLock(ScenarioStep step, bool hold)
    {
        LabProcess p = ProcessOf(step);
        if (!p.IsAlive)
        {
            return Syscall(Errno.ESRCH.AsReturn());
        }
        if (hold)
        {
            p.HoldMmapLock();
        }
        else if (!p.ReleaseMmapLock())
        {
            throw new StepFailure(step.Location, $"no other thread of {p.Name} holds its mmap lock");
        }
        return Syscall(0);
    }

    private StepResult SetRlimit(ScenarioStep step)
    {
        LabProcess p = ProcessOf(step);
        ScenarioNode node = step.Args.GetNode("memlock");
        ulong limit = node.Kind == ScenarioNodeKind.Scalar && node.Text == "unlimited" ? ulong.MaxValue : Value(step, "memlock");
        if (_real is not null)
        {
            return Syscall(_real.KernelOf(NameOf(p)).SetMemlockLimit(limit));
        }
        p.MemlockLimitBytes = limit;
        return Syscall(0);
    }

    private byte[] DataOf(ScenarioStep step)
    {
        if (step.Has("data"))
        {
            return step.Args.GetBytes("data");
        }
        ulong size = Value(step, "size");
        if (size > MaxTransfer)
        {
            throw new StepFailure(step.Args.GetLocation("size"), $"{step.Kind} of 0x{size:x} bytes exceeds the 64 MiB a step may move");
        }
        byte[] data = new byte[size];
        if (step.Has("fill"))
        {
            Array.Fill(data, (byte)Value(step, "fill"));
        }
        else if (step.Has("seed"))
        {
            // A fixed, seeded byte stream (splitmix64), so written and expected data are reproducible.
            ulong x = Value(step, "seed");
            for (int i = 0; i < data.Length; i++)
            {
                x += 0x9e3779b97f4a7c15UL;
                ulong z = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
                data[i] = (byte)((z ^ (z >> 27)) * 0x94d049bb133111ebUL >> 56);
            }
        }
        else
        {
            throw new StepFailure(step.Location, $"{step.Kind} needs data, fill or seed");
        }
        return data;
    }

    private static StepResult MemoryAccessResult(int ret, byte[]? data)
    {
        StepResult r = Syscall(ret);
        bool sigbus = ret == (int)Errno.EIO.AsReturn();
        r.Set("sigbus", sigbus);
        if (sigbus)
        {
            r.Set("message", "SIGBUS");
        }
        if (ret == 0 && data is not null)
        {
            r.Set("data", ResultValue.FromBytes(data));
        }
        return r;
    }

    private static StepResult AddressResult(long ret)
    {
        StepResult r = Syscall(ret);
        if (ret >= 0)
        {
            r.Set(BindField, (ulong)ret);
            r.Set("address", (ulong)ret);
            r.Set("summary", $"0x{ret:x}");
        }
        return r;
    }

    private static MemoryProtection Protection(string text, ScenarioStep step) => text switch
    {
        "rw" => MemoryProtection.Read | MemoryProtection.Write,
        "r" => MemoryProtection.Read,
        "w" => MemoryProtection.Write,
        "none" => MemoryProtection.None,
        _ => throw new StepFailure(step.Location, $"unknown prot '{text}' (rw, r, w, none)"),
    };
}
