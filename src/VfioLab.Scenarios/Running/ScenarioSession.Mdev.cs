using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>A mediated device's vendor driver acting through the VFIO core: external pins and vfio_dma_rw. The
/// steps name the device; for an mdev its vendor driver makes the call (and keeps count of its pins), for any
/// other VFIO device the call goes to the core as that device's driver would make it (vfio-pci has no
/// <c>dma_unmap</c>, so pinning is EINVAL).</summary>
internal sealed partial class ScenarioSession
{
    /// <summary><c>pin_pages</c>: vfio_pin_pages by the mdev's vendor driver. Returns <c>result</c> (the page count
    /// or -errno) and, on success, <c>pfns</c>: the first pinned frame, for a contiguous look at the pages.</summary>
    private StepResult PinPages(ScenarioStep step)
    {
        LabDevice device = CallerOf(step);
        ulong iova = Value(step, "iova");
        int count = (int)Math.Min(step.Args.GetNumber("count", 0), int.MaxValue);
        MemoryProtection prot = (step.Args.GetStringOrNull("prot") ?? "rw") switch
        {
            "r" => MemoryProtection.Read,
            "w" => MemoryProtection.Write,
            _ => MemoryProtection.Read | MemoryProtection.Write,
        };
        Span<ulong> pfns = stackalloc ulong[1];
        long ret = device.PinPages(iova, count, prot, pfns);
        StepResult r = Syscall(ret);
        if (ret > 0)
        {
            r.Set("pfn", pfns[0]);
            r.Set("summary", $"pinned 0x{ret:x} page(s) from iova 0x{iova:x}, first pfn 0x{pfns[0]:x}");
        }
        return r;
    }

    /// <summary><c>unpin_pages</c>: vfio_unpin_pages by the mdev's vendor driver. Void in the kernel: always
    /// <c>result: 0</c>, with <c>warned: true</c> where the kernel would WARN (misuse, a gap).</summary>
    private StepResult UnpinPages(ScenarioStep step)
    {
        LabDevice device = CallerOf(step);
        int count = (int)Math.Min(step.Args.GetNumber("count", 0), int.MaxValue);
        ulong iova = Value(step, "iova");
        bool ok = device.UnpinPages(iova, count);
        StepResult r = Syscall(0);
        r.Set("warned", !ok);
        if (!ok)
        {
            r.Set("summary", "the kernel would WARN: nothing or only part was unpinned");
        }
        return r;
    }

    /// <summary><c>dma_rw</c>: vfio_dma_rw by the mdev's vendor driver, from a kernel thread unless the step names
    /// a <c>process</c> (then from that process's thread, which must own the memory). Returns <c>result</c> (0 or
    /// -errno) and, for a read, <c>data</c>.</summary>
    private StepResult DmaRw(ScenarioStep step)
    {
        LabDevice device = CallerOf(step);
        bool write = step.Args.GetString("op") == "write";
        byte[] data;
        if (write)
        {
            if (!step.Has("data"))
            {
                throw new StepFailure(step.Location, "a dma_rw write needs data");
            }
            data = step.Args.GetBytes("data");
        }
        else
        {
            if (step.Has("data") || !step.Has("size"))
            {
                throw new StepFailure(step.Location, "a dma_rw read takes size, not data");
            }
            ulong size = Value(step, "size");
            if (size > MaxTransfer)
            {
                throw new StepFailure(step.Args.GetLocation("size"), $"dma_rw of 0x{size:x} bytes exceeds the 64 MiB a step may move");
            }
            data = new byte[size];
        }
        LabProcess? current = step.Process is null ? null : ProcessOf(step);
        Errno e = device.DmaRw(Value(step, "iova"), data, write, current);
        StepResult r = Syscall(e.AsReturn());
        if (!write && e == Errno.None)
        {
            r.Set("data", ResultValue.FromBytes(data));
        }
        return r;
    }

    /// <summary>The device the step names, which must be bound to VFIO to call the VFIO core.</summary>
    private LabDevice CallerOf(ScenarioStep step)
    {
        LabDevice d = DeviceOf(step.Args);
        if (!d.IsVfioBound)
        {
            throw new StepFailure(step.Args.GetLocation("device"), $"device {d.Name} is bound to a host driver, not to VFIO; it cannot call the VFIO core");
        }
        return d;
    }
}
