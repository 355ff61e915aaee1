using VfioLab.Host;
using VfioLab.Simulation;
using VfioLab.Type1;
using VfioLab.Vfio;
using VfioLab.Vfio.Pci;

namespace VfioLab.Checks;

/// <summary>
/// The invariant checker over a whole simulated host (the kernel's WARN_ONs, made total), run after
/// every scenario step under <c>--check</c> and in tests. It checks the invariants of the VFIO core,
/// vfio-pci and the host, and those of every type1 container (spec type1.md §4), from one snapshot
/// per container. Cost follows mappings, page-table runs, pin runs and external pins, never pages.
/// </summary>
internal sealed partial class InvariantChecker(SimulatedHost host)
{
    /// <summary>Every invariant this checker evaluates.</summary>
    public static IReadOnlyList<string> Checked => InvariantName.All;

    /// <summary>Evaluates every invariant; an empty list means the state is consistent.</summary>
    /// <remarks>The full sweep. It also takes what the host's change journal recorded and, when the state is
    /// consistent, keeps what <see cref="CheckChanges"/> needs to check only what the next calls change.</remarks>
    public IReadOnlyList<InvariantViolation> Check()
    {
        _gate.Enter();
        try
        {
            Observe(replace: false);
            return Sweep();
        }
        finally
        {
            _gate.Exit();
        }
    }

    private List<InvariantViolation> Sweep()
    {
        host.Machine.Changes.TryTakeNarrow(_ranges);
        _ranges.Clear();
        var found = new List<InvariantViolation>();
        CheckGroups(found);
        List<Type1State> type1 = CheckType1Containers(found);
        SpaprTotals spapr = CheckSpapr(found);
        Dictionary<AddressSpace, MmCharge> perMm = CheckAccounting(type1, spapr, found);
        ulong type1Pins = 0;
        foreach (Type1State t in type1)
        {
            type1Pins += t.PinsHeld;
        }
        int backends = CheckPins(type1Pins, type1.Count, spapr, found);
        CheckDeviceMemory(type1, found);
        CheckBarMappings(found);
        Remember(type1, spapr, perMm, type1Pins, backends, found.Count == 0);
        return found;
    }

    // Each group is in at most one container, and exactly in the one it points at; a container
    // without groups holds no backend state (spec §4.12, §4.15).
    private void CheckGroups(List<InvariantViolation> found)
    {
        var owner = new Dictionary<VfioGroup, VfioContainer>();
        foreach (VfioContainer c in host.Vfio.Containers)
        {
            IReadOnlyList<VfioGroup> groups = c.Groups;
            foreach (VfioGroup g in groups)
            {
                if (owner.TryGetValue(g, out VfioContainer? other) && !ReferenceEquals(other, c))
                {
                    found.Add(new(InvariantName.GroupAttachedOnce, $"group {g.Number} is in containers {other.Id} and {c.Id}"));
                }
                owner[g] = c;
                if (!ReferenceEquals(g.Container, c))
                {
                    found.Add(new(InvariantName.GroupAttachedOnce, $"group {g.Number} is listed in container {c.Id} but points at {g.Container?.Id.ToString() ?? "none"}"));
                }
            }
            if (groups.Count == 0 && c.Iommu is not null)
            {
                found.Add(new(InvariantName.EmptyContainerClean, $"container {c.Id} has no group but keeps backend {c.Driver?.Name} state"));
            }
        }
        foreach (VfioGroup g in host.Vfio.Groups)
        {
            if (g.Container is not null && !owner.ContainsKey(g))
            {
                found.Add(new(InvariantName.GroupAttachedOnce, $"group {g.Number} points at container {g.Container.Id} which does not list it"));
            }
        }
    }

    // Every page pin in the host is held by a type1 container: one per translated RAM page of each
    // mapping while the container has domains, plus one per external pin (spec §2.5, §4.4); or by sPAPR:
    // one per v1 TCE, one per page of each live pre-registered region (docs/spapr.md); no leak,
    // no over-release. Pins held by another backend cannot be counted, so with one the totals are not
    // compared; with no backend at all no frame may be pinned.
    private int CheckPins(ulong type1Pins, int type1Containers, SpaprTotals spapr, List<InvariantViolation> found)
    {
        int backends = 0;
        foreach (VfioContainer c in host.Vfio.Containers)
        {
            backends += c.Iommu is null ? 0 : 1;
        }
        if (backends == type1Containers + spapr.Containers)
        {
            ReportPins(spapr.PinsHeld + type1Pins, backends, found);
        }
        return backends;
    }

    // pins-balanced, given what the backends hold when every backend is type1 or sPAPR.
    private void ReportPins(ulong expected, int backends, List<InvariantViolation> found) =>
        ReportPins(host.Machine.Memory.TotalPins, expected, backends, found);

    // pins: the host's page pins outstanding, as read (the narrow check reads them with its pin test, in one lock).
    private static void ReportPins(ulong pins, ulong expected, int backends, List<InvariantViolation> found)
    {
        if (pins != expected)
        {
            found.Add(new(InvariantName.PinsBalanced, backends == 0
                ? $"0x{pins:x} page pins outstanding with no IOMMU backend holding any"
                : $"0x{pins:x} page pins outstanding, but the backends hold 0x{expected:x} ({(pins > expected ? "leaked" : "over-released")})"));
        }
    }

    // No CPU PTE may reach a BAR while its memory decode is off, during reset, or after revocation
    // (abafbc551fdd; DESIGN.md invariants).
    private void CheckBarMappings(List<InvariantViolation> found)
    {
        foreach (SimulatedDevice d in host.Devices.Values)
        {
            if (d.Vfio?.Hardware is VfioPciDevice pci)
            {
                CheckBarMapping(d, pci, found);
            }
        }
    }

    private static void CheckBarMapping(SimulatedDevice d, VfioPciDevice pci, List<InvariantViolation> found)
    {
        if (pci.Function.DecodesMemory && !pci.Revoked)
        {
            return;
        }
        foreach (Vma vma in pci.Mapping.SnapshotVmas())
        {
            vma.Mm.MmapReadLock();
            ulong present;
            try
            {
                present = vma.Mm.PresentPagesLocked(vma.Start, vma.PageCount);
            }
            finally
            {
                vma.Mm.MmapReadUnlock();
            }
            if (present > 0)
            {
                found.Add(new(InvariantName.NoCpuMappingOfDisabledBar,
                    $"{d.Name}: 0x{present:x} page(s) of {vma} are present while the BAR does not decode"));
            }
        }
    }
}
