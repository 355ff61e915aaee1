using System.Globalization;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Type1;
using VfioLab.Vfio;
using VfioLab.Vfio.Pci;

namespace VfioLab.Checks;

/// <summary>
/// A deterministic digest of everything a VFIO user can observe of a simulated host's VFIO state, so
/// a test can assert that a failed call left it "byte for byte as before": each container (file
/// open, groups, backend) with, for type1, every mapping (IOVA, size, vaddr, prot, flags, owner,
/// <c>locked_vm</c>, external pins, dirty-bitmap contents), every domain with its groups and IOPTE
/// runs, the IOVA windows and counters; each VFIO group (container, users, open file, device open
/// counts) and IOMMU group (domain, DMA owner); the frames' pin counts; each live process's
/// RLIMIT_MEMLOCK, <c>locked_vm</c> and open fds; each vfio-pci function's command register and
/// reset state.
/// </summary>
/// <remarks>
/// Deliberately left out, because a failing call may change them in Linux too: CPU page tables and
/// frame allocation (GUP faults pages in before a MAP fails), PG_dirty (a failed MAP unpins its pages
/// dirty), the trace, the IOMMU's IOTLB-flush counter, domain and container numbering. Cost follows
/// mappings, IOPTE runs, pin runs and external pins; only dirty bitmaps are read word by word (they
/// are bitmaps by uAPI definition) and each becomes one line with its hash.
/// </remarks>
internal sealed class StateDigest : IEquatable<StateDigest>
{
    private readonly string[] _lines;

    private StateDigest(string[] lines)
    {
        _lines = lines;
        ulong h = 0xcbf29ce484222325;
        foreach (string line in lines)
        {
            foreach (char ch in line)
            {
                h = (h ^ ch) * 0x100000001b3;
            }
            h = (h ^ '\n') * 0x100000001b3;
        }
        Hash = h;
    }

    /// <summary>The digest as text, one line per object or run, in a fixed order.</summary>
    public IReadOnlyList<string> Lines => _lines;

    /// <summary>A 64-bit FNV-1a hash of <see cref="Lines"/>, for display; equality compares the lines.</summary>
    public ulong Hash { get; }

    /// <summary>Takes the digest of <paramref name="host"/>. Call it between system calls: each container is
    /// read under its own lock, not the whole host at once.</summary>
    public static StateDigest Of(SimulatedHost host)
    {
        var lines = new List<string>();
        DigestProcesses(host, lines);
        DigestGroups(host, lines);
        foreach (VfioContainer c in host.Vfio.Containers)
        {
            DigestContainer(c, lines);
        }
        host.Machine.Memory.VisitPinRuns((first, last, count) => lines.Add($"pins [0x{first:x}, 0x{last:x}] x{count}"));
        foreach (SimulatedDevice d in host.Devices.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            if (d.Function is not null)
            {
                lines.Add($"pci {d.Name} command 0x{(ushort)d.Function.Command:x} reset {d.Function.InReset} resets {d.Function.ResetCount}" +
                    $"{(d.Vfio?.Hardware is VfioPciDevice p ? $" revoked {p.Revoked}" : string.Empty)}");
            }
        }
        return new StateDigest([.. lines]);
    }

    /// <summary>The first line that differs from <paramref name="before"/>, as "before / after", or null when
    /// both are equal.</summary>
    public string? FirstDifference(StateDigest before)
    {
        int n = Math.Min(_lines.Length, before._lines.Length);
        for (int i = 0; i < n; i++)
        {
            if (!string.Equals(_lines[i], before._lines[i], StringComparison.Ordinal))
            {
                return $"line {i}: before '{before._lines[i]}', after '{_lines[i]}'";
            }
        }
        return _lines.Length == before._lines.Length
            ? null
            : _lines.Length > n ? $"line {n}: after adds '{_lines[n]}'" : $"line {n}: after drops '{before._lines[n]}'";
    }

    /// <inheritdoc />
    public bool Equals(StateDigest? other) => other is not null && Hash == other.Hash && _lines.AsSpan().SequenceEqual(other._lines);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as StateDigest);

    /// <inheritdoc />
    public override int GetHashCode() => Hash.GetHashCode();

    /// <inheritdoc />
    public override string ToString() => $"state 0x{Hash:x16} ({_lines.Length} lines)";

    private static void DigestProcesses(SimulatedHost host, List<string> w)
    {
        foreach (Process p in host.Machine.Processes)
        {
            AddressSpace mm = p.LastMm;
            w.Add($"process {p.Pid} {p.Name} alive {p.IsAlive} memlock 0x{p.MemlockLimitBytes:x} cap {p.CapIpcLock} mm {mm.OwnerPid} locked_vm 0x{mm.LockedVm:x}");
            foreach (int fd in p.Fds.Snapshot())
            {
                if (p.Fds.TryGet(fd, out OpenFile file))
                {
                    w.Add($"  fd {fd} {Describe(file)}");
                    file.Put();
                }
            }
        }
    }

    private static string Describe(OpenFile file) => file.Operations switch
    {
        VfioContainerFile c => $"container {c.Container.Id}",
        VfioGroupFile g => $"group {g.Group.Number}",
        VfioDeviceFile d => $"device {d.Device.Name}",
        _ => $"{file.Path} {file.Operations.GetType().Name}",
    };

    private static void DigestGroups(SimulatedHost host, List<string> w)
    {
        foreach (VfioGroup g in host.Vfio.Groups.OrderBy(g => g.Number))
        {
            w.Add($"group {g.Number} {g.Type} container {g.Container?.Id.ToString(CultureInfo.InvariantCulture) ?? "-"} users {g.ContainerUsers} open {g.OpenedFile is not null} present {g.Present}");
            foreach (VfioDevice d in g.Devices)
            {
                w.Add($"  device {d.Name} open {d.OpenCount} removed {d.Removed} notifiers {d.NotifierCount}");
            }
        }
        foreach (IommuGroup g in host.IommuGroups.Values.OrderBy(g => g.Id))
        {
            IommuDomain? d = g.Domain;
            w.Add($"iommu-group {g.Id} domain {(d is null ? "-" : d.Unit.Name)} owned {g.DmaOwner is not null} viable {g.IsViable}");
            if (g.TableGroup is { } tg)
            {
                w.Add($"  pe owned {tg.Owned} windows [{string.Join(",", tg.Windows.Select(t => t is null ? "-" : t.Window.ToString()))}]");
            }
        }
        if (host.SpaprDriver is { } spapr)
        {
            DigestSpaprMms(spapr.Mms, w);
        }
    }

    // The sPAPR per-mm state: each mm's pre-registered regions (address, pages, page shift, users, mapping
    // count, hpa runs) and the charges the backend can never return.
    private static void DigestSpaprMms(Spapr.SpaprMmRegistry mms, List<string> w)
    {
        foreach (Spapr.MmIommuContext ctx in mms.Contexts.OrderBy(c => c.Id))
        {
            foreach (Spapr.MmIommuRegion r in ctx.Regions.OrderBy(r => r.Ua))
            {
                w.Add($"spapr-mm #{ctx.Id} pid {ctx.Mm.OwnerPid} {r}");
                foreach (Collections.Run<Spapr.HpaRun> h in r.Hpas.All())
                {
                    w.Add($"    hpas [0x{h.Start:x}, 0x{h.Last:x}] -> pfn 0x{h.Value.Pfn:x}");
                }
            }
        }
        foreach ((AddressSpace mm, ulong pages) in mms.Leaks.OrderBy(l => l.Key.OwnerPid))
        {
            w.Add($"spapr-leaked mm {mm.OwnerPid} pages 0x{pages:x}");
        }
    }

    private static void DigestContainer(VfioContainer c, List<string> w)
    {
        IReadOnlyList<VfioGroup> groups = c.Groups;
        w.Add($"container {c.Id} file {c.FileOpen} driver {c.Driver?.Name ?? "-"} groups [{string.Join(",", groups.Select(g => g.Number))}]");
        switch (c.Iommu)
        {
            case null:
                return;
            case VfioIommu t:
                DigestType1(t, w);
                return;
            case Spapr.TceContainer tce:
                DigestSpapr(tce, w);
                return;
            case IVfioIommuInspection other:
                w.Add($"  backend {other.GetType().Name} mappings {other.MappingCount} dma_avail {other.DmaAvail}");
                return;
            default:
                w.Add($"  backend {c.Iommu.GetType().Name}");
                return;
        }
    }

    // One sPAPR container: version, enabled, the mm it serves, ENABLE's charge, pending default window, its
    // registrations and each window with its valid TCE runs (hpa, ua, direction, mm).
    private static void DigestSpapr(Spapr.TceContainer tce, List<string> w)
    {
        Spapr.TceContainerSnapshot s = tce.Snapshot();
        w.Add($"  spapr v2 {s.V2} enabled {s.Enabled} pending_default {s.DefaultWindowPending} mm {s.Mm?.OwnerPid.ToString(CultureInfo.InvariantCulture) ?? "-"}" +
            $" locked_pages 0x{s.LockedPages:x} groups [{string.Join(",", s.Groups)}]");
        foreach (Spapr.MmIommuRegion r in s.Prereg)
        {
            w.Add($"  prereg 0x{r.Ua:x} +0x{r.Entries:x}");
        }
        foreach (Spapr.TceWindowSnapshot win in s.Windows)
        {
            w.Add($"  {win.Table} charged 0x{win.Table.ChargedPages:x} to {win.ChargedMm?.OwnerPid.ToString(CultureInfo.InvariantCulture) ?? "-"}");
            foreach (Collections.Run<Iommu.TceEntryRun> r in win.Runs)
            {
                w.Add($"    tce [0x{r.Start:x}, 0x{r.Last:x}] hpa 0x{r.Value.Hpa:x} ua 0x{r.Value.Ua:x} {r.Value.Prot} mm #{r.Value.MmId}");
            }
        }
    }

    private static void DigestType1(VfioIommu t, List<string> w)
    {
        VfioIommuSnapshot s = t.Snapshot();
        w.Add($"  type1 v2 {s.V2} dma_avail {s.DmaAvail}/{s.DmaEntryLimit} count {s.DmaCount} vaddr_invalid {s.VaddrInvalidCount} non_pinned {s.NumNonPinnedGroups}" +
            $" dirty {s.DirtyTracking} pgsize_bitmap 0x{s.PgsizeBitmap:x} devices {s.RegisteredDevices}");
        w.Add($"  iova windows {string.Join(" ", s.IovaRanges.Select(r => $"[0x{r.Start:x}, 0x{r.Last:x}]"))}");
        w.Add($"  emulated [{string.Join(",", s.EmulatedGroups.Select(g => $"{g.Group.Number}:{g.PinnedPageDirtyScope}"))}]");
        foreach (VfioDmaSnapshot m in s.Mappings)
        {
            w.Add($"  dma [0x{m.Iova:x}, 0x{m.Last:x}] size 0x{m.Size:x} vaddr 0x{m.Vaddr:x} {m.Prot} mapped {m.IommuMapped} lock_cap {m.LockCap}" +
                $" invalid {m.VaddrInvalid} task {m.Task.Pid} mm {m.Mm.OwnerPid}/{m.Mm.IsAlive} locked_vm {m.LockedVm} bitmap {m.BitmapWords}@0x{m.BitmapPageSize:x}" +
                $" tree {string.Join(" ", m.TreeRuns.Select(r => $"[0x{r.Start:x}, 0x{r.Last:x}]"))}");
            foreach (VpfnRun v in m.Vpfns)
            {
                w.Add($"    vpfn 0x{v.Iova:x} x{v.Pages} -> pfn 0x{v.Pfn.Value:x} refs {v.RefCount}");
            }
        }
        t.VisitDirtyBitmaps((iova, words) => w.Add($"  bitmap 0x{iova:x} {BitmapSummary(words)}"));
        for (int i = 0; i < s.Domains.Count; i++)
        {
            VfioDomainSnapshot d = s.Domains[i];
            w.Add($"  domain #{i} {d.Domain.Unit.Name} pgsizes 0x{d.Domain.PgsizeBitmap:x} coherent {d.EnforceCacheCoherency}" +
                $" groups [{string.Join(",", d.Groups.Select(g => $"{g.Group.Number}:{g.PinnedPageDirtyScope}"))}] pending {d.PendingInvalidations.Count}");
            foreach (MappedRun r in d.Runs)
            {
                w.Add($"    iopte [0x{r.Iova.Start:x}, 0x{r.Iova.Last:x}] -> 0x{r.Phys.Value:x} 0x{r.PageSize:x} {r.Prot}");
            }
        }
    }

    // One line per bitmap: its length, the number of set bits and a 64-bit hash of the words.
    private static string BitmapSummary(ulong[] words)
    {
        ulong h = 0x9e3779b97f4a7c15;
        long ones = 0;
        foreach (ulong word in words)
        {
            ones += System.Numerics.BitOperations.PopCount(word);
            h = (h ^ word) * 0xff51afd7ed558ccd;
            h ^= h >> 33;
        }
        return $"words {words.Length} ones {ones} hash 0x{h:x16}";
    }
}
