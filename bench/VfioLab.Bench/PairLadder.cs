using System.Reflection;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Bench;

/// <summary>The cost ladder of issue 16's 4 KiB pair (<c>--pair-ladder N</c>): each layer of a MAP_DMA+UNMAP_DMA of one
/// page among 65,535 live mappings timed alone, N times, on the rig of <see cref="PairPeerBenchmarks"/> (the same probe
/// IOVA and page): the whole pair through the syscall surface, the typed pair (no ioctl decode or dispatch), the DMA tree's
/// link and unlink, a one-page GUP pin and unpin, a charge and its uncharge, an IOPTE map and unmap, and the bare lock
/// round trips. Prints user CPU ns per step (the figure to compare on a loaded machine) and wall ns.</summary>
internal static class PairLadder
{
    private const ulong Probe = 0x1_0000_0000 + 0x1000 + (32768 * 8192UL);

    public static void Run(TextWriter output, int n, string? only = null)
    {
        _only = only;
        var bench = new PairPeerBenchmarks();
        bench.Setup();
        Type1Rig rig = bench.Rig;
        Process process = rig.Process;
        VfioIommu iommu = rig.Backend;
        // The tree, the domains and the container's lock through the accessors the checker reads them by; the two
        // layers nothing outside type1 reads, through their fields.
        var dma = (DmaMapUnmap)Field(iommu, "_dma");
        var accounting = (LockedMemoryAccounting)Field(iommu, "_accounting");
        DmaTree tree = iommu.TreeForCheck;
        DomainSet domains = iommu.DomainsForCheck;
        OrderedLock containerLock = iommu.CheckLock;
        AddressSpace mm = process.Mm!;
        ulong vaddr = bench.ProbeVaddr;
        IommuDomain domain = domains.DomainsLocked[0].Domain;
        Machine machine = process.Machine;
        var probe = new VfioDma(ByteRange.FromStartSize(Probe, 4096), new HostVirtAddr(vaddr), IommuProt.Read | IommuProt.Write, process, mm, false, 12);
        var runs = new PfnRun[4];
        Gup.PinUserPages(mm, new HostVirtAddr(vaddr), 1, true, runs, out _);
        PfnRun frame = runs[0];
        PhysAddr phys = frame.First.ToPhys(12);
        Gup.UnpinUserPages(machine, frame, true);

        output.WriteLine($"sizeof(IopteRun) = {System.Runtime.CompilerServices.Unsafe.SizeOf<IopteRun>()}");
        Step(output, "pair via ioctl", n, () => bench.ModelMapUnmap4KiB());
        Step(output, "pair typed (no ioctl)", n, () =>
        {
            dma.MapDma(process, Probe, vaddr, 4096, DmaMapFlags.Read | DmaMapFlags.Write);
            dma.UnmapDma(process, null, Probe, 4096, 0, default, out _);
        });
        Step(output, "container ioctl CHECK_EXTENSION", n, () => process.Syscalls.Ioctl(rig.ContainerFd, VfioIoctl.CheckExtension, VfioExtension.Type1v2Iommu));
        Step(output, "type1 lock enter+exit", n, () =>
        {
            using (containerLock.EnterScope())
            {
            }
        });
        Step(output, "mmap read lock+unlock", n, () =>
        {
            mm.MmapReadLock();
            mm.MmapReadUnlock();
        });
        Step(output, "mmap write lock+unlock", n, () =>
        {
            mm.MmapWriteLock();
            mm.MmapWriteUnlock();
        });
        Step(output, "tree link+remove", n, () =>
        {
            using (containerLock.EnterScope())
            {
                tree.TryLinkLocked(probe);
                tree.CountLinkedLocked();
                tree.RemoveLocked(probe);
            }
        });
        Step(output, "gup pin+unpin 1 page", n, () =>
        {
            Span<PfnRun> r = stackalloc PfnRun[4];
            Gup.PinUserPages(mm, new HostVirtAddr(vaddr), 1, true, r, out _);
            Gup.UnpinUserPages(machine, r[..1], true);
        });
        Step(output, "memory pin+unpin 1 frame", n, () =>
        {
            machine.Memory.PinRuns([frame]);
            machine.Memory.UnpinRun(frame, true);
        });
        Step(output, "charge+uncharge", n, () =>
        {
            using (containerLock.EnterScope())
            {
                accounting.LockAcctLocked(probe, 1, async: false);
                accounting.LockAcctLocked(probe, -1, async: true);
            }
        });
        Step(output, "iopte map+unmap (iommu_unmap)", n, () =>
        {
            domain.Map(new Iova(Probe), phys, 4096, IommuProt.Read | IommuProt.Write | IommuProt.Cache);
            domain.Unmap(new Iova(Probe), 4096);
        });
        Step(output, "iopte map+unmap (type1's one run)", n, () =>
        {
            domain.Map(new Iova(Probe), phys, 4096, IommuProt.Read | IommuProt.Write | IommuProt.Cache);
            var sink = new NullSink();
            domain.TryUnmapSyncStreamed(ByteRange.FromStartSize(Probe, 4096), 512, ref sink, out _, out _);
        });
        Step(output, "gup pin 1 page, memory unpin", n, () =>
        {
            Span<PfnRun> r = stackalloc PfnRun[4];
            Gup.PinUserPages(mm, new HostVirtAddr(vaddr), 1, true, r, out _);
            machine.Memory.UnpinRun(r[0], true);
        });
        Step(output, "memory pin 1 frame (Pin), UnpinRun", n, () =>
        {
            machine.Memory.Pin(frame.First, 1);
            machine.Memory.UnpinRun(frame, true);
        });
        var table = new VfioLab.Collections.RunMap<IopteRun>();
        for (ulong i = 0; i < 65535; i++)
        {
            ulong at = 0x1_0000_0000 + (i * 8192);
            table.Insert(at, at + 4095, new IopteRun(new PhysAddr(0x1000_0000 + (i * 4096)), 4096, IommuProt.Read | IommuProt.Write));
        }
        Step(output, "RunMap<IopteRun> insert+remove one", n, () =>
        {
            table.TryInsertOne(Probe, Probe + 4095, new IopteRun(phys, 4096, IommuProt.Read | IommuProt.Write));
            table.TryRemoveExactOne(Probe, Probe + 4095, out _);
        });
        foreach (int k in new[] { 1, 2, 5, 17, 40, 63 })
        {
            ulong key = Probe + (ulong)k * 8192;
            Step(output, $"  ... at probe + {k}", n / 4, () =>
            {
                table.TryInsertOne(key, key + 4095, new IopteRun(phys, 4096, IommuProt.Read | IommuProt.Write));
                table.TryRemoveExactOne(key, key + 4095, out _);
            });
        }
        var dict = new Dictionary<ulong, ulong>();
        for (ulong i = 0; i < 65535; i++)
        {
            dict[(0x1_0000_0000 + (i * 8192)) >> 12] = i;
        }
        Step(output, "Dictionary<ulong,ulong> add+remove", n, () =>
        {
            dict.Add(Probe >> 12, 1);
            dict.Remove(Probe >> 12);
        });
        Step(output, "C peer insert+find+remove", n, () => bench.CTreeInsertRemove());
        bench.Cleanup();
    }

    private struct NullSink : IUnmappedRunSink
    {
        public void Take(ulong iovaStart, ulong iovaLast, PhysAddr phys)
        {
        }
    }

    private static object Field(object o, string name) =>
        o.GetType().GetField(name, BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(o)
        ?? throw new InvalidOperationException($"--pair-ladder: {o.GetType().Name} has no field {name} any more; update PairLadder");

    // A rung's name must contain this to run (all when null): one rung alone under a profiler.
    private static string? _only;

    private static void Step(TextWriter output, string what, int n, Action step)
    {
        if (_only is not null && !what.Contains(_only, StringComparison.Ordinal))
        {
            return;
        }
        for (int i = 0; i < Math.Min(n, 200_000); i++)
        {
            step();
        }
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        TimeSpan user = self.UserProcessorTime;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            step();
        }
        double ns = watch.Elapsed.TotalMilliseconds * 1e6 / n;
        self.Refresh();
        double cpu = (self.UserProcessorTime - user).TotalMilliseconds * 1e6 / n;
        output.WriteLine($"{what,-34} {cpu,6:F0} ns CPU {ns,6:F0} ns wall");
    }
}
