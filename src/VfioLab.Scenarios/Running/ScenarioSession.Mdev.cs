using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Iommu;
using VfioLab.Scenarios.Model;
using VfioLab.Simulation;
using VfioLab.Vfio;
using VfioLab.Vfio.Mdev;

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
        (VfioDevice device, MdevVendorDriver? driver) = CallerOf(step);
        ulong iova = Value(step, "iova");
        int count = (int)Math.Min(step.Args.GetNumber("count", 0), int.MaxValue);
        IommuProt prot = (step.Args.GetStringOrNull("prot") ?? "rw") switch
        {
            "r" => IommuProt.Read,
            "w" => IommuProt.Write,
            _ => IommuProt.Read | IommuProt.Write,
        };
        // The kernel's array of page pointers: bounded by what the core accepts (E2BIG past it).
        var pfns = new Pfn[Math.Clamp(count, 1, 8192)];
        long ret = driver is not null
            ? driver.PinPages(device, iova, count, prot, pfns)
            : device.PinPages(iova, count, prot, pfns, Host.Machine.PageShift);
        StepResult r = Syscall(ret);
        if (ret > 0)
        {
            r.Set("pfn", pfns[0].Value);
            r.Set("summary", $"pinned 0x{ret:x} page(s) from iova 0x{iova:x}, first pfn 0x{pfns[0].Value:x}");
        }
        return r;
    }

    /// <summary><c>unpin_pages</c>: vfio_unpin_pages by the mdev's vendor driver. Void in the kernel: always
    /// <c>result: 0</c>, with <c>warned: true</c> where the kernel would WARN (misuse, a gap).</summary>
    private StepResult UnpinPages(ScenarioStep step)
    {
        (VfioDevice device, MdevVendorDriver? driver) = CallerOf(step);
        int count = (int)Math.Min(step.Args.GetNumber("count", 0), int.MaxValue);
        ulong iova = Value(step, "iova");
        bool ok = driver is not null ? driver.UnpinPages(device, iova, count) : device.UnpinPages(iova, count, Host.Machine.PageShift);
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
        (VfioDevice device, _) = CallerOf(step);
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
        Host.Process? current = step.Process is null ? null : ProcessOf(step);
        Errno e = MdevVendorDriver.DmaRw(device, Value(step, "iova"), data, write, current);
        StepResult r = Syscall(e.AsReturn());
        if (!write && e == Errno.None)
        {
            r.Set("data", ResultValue.FromBytes(data));
        }
        return r;
    }

    private (VfioDevice Device, MdevVendorDriver? Driver) CallerOf(ScenarioStep step)
    {
        SimulatedDevice d = DeviceOf(step.Args);
        if (d.Vfio is not { } vfio)
        {
            throw new StepFailure(step.Args.GetLocation("device"), $"device {d.Name} is bound to a host driver, not to VFIO; it cannot call the VFIO core");
        }
        return (vfio, vfio.Driver as MdevVendorDriver);
    }
}
