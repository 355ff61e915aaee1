using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Lab;

namespace VfioLab.Examples.Tests;

/// <summary>
/// The model's two ways of watching a VMM: the invariant checker run after every system call
/// (<see cref="InvariantChecking.AfterEveryCall"/>), which turns a call that corrupts kernel state into an
/// exception thrown from that call, and the trace, which shows what one ioctl did inside the kernel.
/// </summary>
public sealed class InvariantAndTraceTests
{
    private const ulong Iova = 0x20_0000;
    private const ulong Length = 2 * Size.MiB;

    private static LabHost Host(params string[] quirks)
    {
        var builder = new LabHostBuilder()
            .WithMemory(Size.GiB)
            .AddPciDevice("nic", "0000:02:00.0", d => d.Bar(0, Size.MiB).Group(2))
            .AddProcess("vmm", memlockBytes: 8 * Size.MiB);
        foreach (string q in quirks)
        {
            builder.WithQuirk(q);
        }
        LabHost host = builder.Build();
        host.Checking = InvariantChecking.AfterEveryCall;
        return host;
    }

    private static Container Attach(LabProcess vmm)
    {
        var container = Container.Open(vmm.Syscalls);
        Group.Open(vmm.Syscalls, 2).SetContainer(container);
        container.SetIommu(VfioExtension.Type1v2Iommu);
        return container;
    }

    private static ulong HugePage(LabProcess vmm)
    {
        long address = vmm.Syscalls.Mmap(0, Length, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | MmapFlags.Huge2MiB, -1, 0);
        Assert.True(address > 0);
        return (ulong)address;
    }

    private static object Field(LabTraceEvent e, string name) => Assert.Single(e.Fields, f => f.Key == name).Value;

    [Fact]
    public void MapDma_TracedAndCheckedAfterEveryCall_FaultsPinsChargesMapsInThatOrder()
    {
        LabHost host = Host();
        LabProcess vmm = host.Process("vmm");
        Container container = Attach(vmm);
        ulong buf = HugePage(vmm);
        var events = new List<LabTraceEvent>();

        using (host.SubscribeTrace(events.Add))
        {
            container.MapDma(Iova, buf, Length);
        }

        // GUP faults the huge page in, pins its 512 small pages as one physically contiguous run, charges them to
        // locked_vm, and the IOMMU maps the run at the IOVA; map_dma is type1's own account of the mapping, and the
        // system call's event comes last, when the ioctl returns.
        Assert.Equal(["fault", "pin", "charge", "iommu_map", "map_dma", "syscall"], events.Select(e => e.Kind));
        Assert.Equal([vmm.Pid, vmm.Pid, vmm.Pid, 0, vmm.Pid, vmm.Pid], events.Select(e => e.Pid));
        LabTraceEvent syscall = events[5];
        Assert.Equal(("ioctl", "VFIO_IOMMU_MAP_DMA", 0L), ((string)Field(syscall, "call"), (string)Field(syscall, "request"), Convert.ToInt64(Field(syscall, "result"), System.Globalization.CultureInfo.InvariantCulture)));
        LabTraceEvent pin = events[1], charge = events[2], iommuMap = events[3], mapDma = events[4];
        Assert.Equal((buf, 512UL, 1), ((ulong)Field(pin, "vaddr"), (ulong)Field(pin, "pages"), (int)Field(pin, "runs")));
        Assert.Equal((512L, 512UL), ((long)Field(charge, "pages"), (ulong)Field(charge, "locked_vm")));
        Assert.Equal((Iova, Length), ((ulong)Field(iommuMap, "iova"), (ulong)Field(iommuMap, "size")));
        Assert.Equal((ulong)Field(pin, "pfn") * Size.Page, (ulong)Field(iommuMap, "phys"));
        // IOVA and physical address are both 2 MiB aligned, so one 2 MiB IOPTE translates the whole huge page (at
        // IOVA 0x100000 the IOMMU would need 512 4 KiB entries).
        Assert.Equal(new LabTranslation((ulong)Field(iommuMap, "phys") + 0x1234, Length, null), host.Device("nic").Translate(Iova + 0x1234));
        Assert.Equal(1UL, host.Device("nic").IommuEntries);
        Assert.Equal((Iova, buf, Length, 512L), ((ulong)Field(mapDma, "iova"), (ulong)Field(mapDma, "vaddr"),
            (ulong)Field(mapDma, "size"), (long)Field(mapDma, "locked_vm")));
        Assert.Equal(events.Select(e => e.Sequence).Order(), events.Select(e => e.Sequence));
        Assert.Equal(Length, vmm.LockedVmBytes);
        Assert.Empty(host.CheckInvariants());
    }

    [Fact]
    public void UnmapDma_AfterExecOnPre63Kernel_ThrowsInvariantViolationFromTheIoctl()
    {
        // type1 before v6.3 (046eca5018f8) un-charged from the task's current mm: after exec, a fresh one.
        LabHost host = Host(KernelQuirks.ExecLockedVmUnderflow);
        LabProcess vmm = host.Process("vmm");
        Container container = Attach(vmm);
        container.MapDma(Iova, HugePage(vmm), Length);
        // A VMM that execs a new binary keeps its container fd across exec (live update).
        Assert.Equal(Errno.None, vmm.Exec());

        InvariantViolationException e = Assert.Throws<InvariantViolationException>(() => container.UnmapDma(Iova, Length));

        Assert.StartsWith($"ioctl of {vmm}", e.Call, StringComparison.Ordinal);
        Assert.Equal([InvariantNames.LockedVmMatchesCharges, InvariantNames.LockedVmWithinLimit],
            e.Violations.Select(v => v.Invariant).Distinct());
        // The unmap completed before the check threw: the mapping is gone and the fresh mm's locked_vm wrapped
        // to -512 pages.
        Assert.Equal(0UL, vmm.ContainerOf(container.Fd)!.MappingCount);
        Assert.Equal(unchecked(0UL - Length), vmm.LockedVmBytes);
    }

    [Fact]
    public void UnmapDma_AfterExecOnCurrentKernel_PassesEveryCheck()
    {
        LabHost host = Host();
        LabProcess vmm = host.Process("vmm");
        Container container = Attach(vmm);
        container.MapDma(Iova, HugePage(vmm), Length);
        Assert.Equal(Errno.None, vmm.Exec());

        ulong unmapped = container.UnmapDma(Iova, Length);

        // Since v6.3 the charge follows the mm recorded at MAP; the old mm is gone, so nothing is un-charged anywhere.
        Assert.Equal(Length, unmapped);
        Assert.Equal(0UL, vmm.LockedVmBytes);
        Assert.Equal(0UL, host.PinnedPages);
        Assert.Empty(host.CheckInvariants());
    }
}
