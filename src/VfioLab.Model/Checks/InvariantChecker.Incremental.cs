using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Checks;

// The incremental check (issue 16): after a call, only what the call changed. The host's change journal
// (Host/ChangeJournal.cs) says whether every call since the last check was a type1 MAP_DMA or UNMAP_DMA that
// declared its IOVA range; then each declared range is checked through a windowed snapshot (the mappings and
// page-table runs around it, VfioIommu.Snapshot(range)) with the per-container checks of the full sweep but those of
// what MAP and UNMAP never change (the groups of the core and of type1, reserved regions, pgsize_bitmap), and
// the invariants that add up over every mapping (dma-avail-conserved, vaddr-invalid-count, the per-mm half of
// locked-vm-matches-charges and locked-vm-within-limit, pins-balanced) are answered from what each mapping charged
// and pinned when it was last checked, kept here (one entry per mapping, never per page). Anything else, a state
// not known to be consistent (the last check found something, or none ran yet), or a container holding devices
// makes it the full sweep. Starting from a consistent state, a violation can only appear where a call changed
// something, so it finds the same invariants broken as the full sweep (InvariantCheckerIncrementalTests).
internal sealed partial class InvariantChecker
{
    // What the incremental check keeps is one checker's: calls on several threads (LabHost checking after every
    // call) check one at a time.
    private readonly object _gate = new();
    private readonly List<(int Container, ulong Start, ulong Last)> _ranges = [];
    private Dictionary<int, ContainerCharges>? _kept;
    private SpaprTotals? _keptSpapr;

    /// <summary>Whether the last check looked only at what changed (false: it was the full sweep).</summary>
    public bool LastWasIncremental { get; private set; }

    /// <summary>Checks what changed since the last check: the declared ranges when that is all that changed and the
    /// state was consistent then, the whole host otherwise (<see cref="Check"/>).</summary>
    public IReadOnlyList<InvariantViolation> CheckChanges()
    {
        lock (_gate)
        {
            return CheckChangesLocked();
        }
    }

    private List<InvariantViolation> CheckChangesLocked()
    {
        _ranges.Clear();
        if (_kept is null || _keptSpapr is null || !host.Machine.Changes.TryTakeNarrow(_ranges))
        {
            return Sweep();
        }
        Dictionary<int, ContainerCharges> kept = _kept;
        _kept = null;
        var found = new List<InvariantViolation>();
        var states = new List<Type1State>(_ranges.Count);
        foreach ((int id, ulong start, ulong last) in _ranges)
        {
            VfioContainer? c = host.Vfio.Containers.FirstOrDefault(x => x.Id == id);
            if (c?.Iommu is not VfioIommu iommu || !kept.TryGetValue(id, out ContainerCharges? charges))
            {
                return Sweep();
            }
            var t = new Type1State(c, iommu.Snapshot(new ByteRange(start, last)));
            if (t.Snapshot.DevicePfnmaps.Count > 0)
            {
                // The hold checks look at every mapping of the container.
                return Sweep();
            }
            CheckType1Container(t, whole: false, found);
            charges.Replace(t.Snapshot.Window!.Value, t.Charges);
            CheckDmaAvail(t, charges.Count, found);
            CheckCounters(t, charges.VaddrInvalid, found);
            states.Add(t);
        }
        var perMm = new Dictionary<AddressSpace, MmCharge>();
        ulong pins = 0;
        foreach (ContainerCharges charges in kept.Values)
        {
            pins += charges.Pins;
            foreach ((AddressSpace mm, MmCharge c) in charges.PerMm)
            {
                AddCharge(perMm, mm, c.Charged, c.Mappings);
            }
        }
        CheckMmCharges(perMm, _keptSpapr, found);
        CheckPins(pins, kept.Count, _keptSpapr, found);
        CheckDeviceMemory(states, found);
        CheckBarMappings(found);
        _kept = found.Count == 0 ? kept : null;
        LastWasIncremental = true;
        return found;
    }

    // After a full sweep: keep each type1 container's per-mapping charges and sPAPR's totals when the state is
    // consistent, for the next incremental check; forget them otherwise.
    private void Remember(List<Type1State> type1, SpaprTotals spapr, bool consistent)
    {
        LastWasIncremental = false;
        _kept = null;
        _keptSpapr = null;
        if (!consistent)
        {
            return;
        }
        var kept = new Dictionary<int, ContainerCharges>(type1.Count);
        foreach (Type1State t in type1)
        {
            var charges = new ContainerCharges();
            charges.Replace(new ByteRange(0, ulong.MaxValue), t.Charges);
            kept.Add(t.Container.Id, charges);
        }
        _kept = kept;
        _keptSpapr = spapr;
    }

    /// <summary>What one mapping charged (<c>locked_vm</c>, to its mm) and pinned when last checked.</summary>
    private sealed record MappingCharge(ulong Iova, AddressSpace Mm, long LockedVm, ulong Pins, bool VaddrInvalid);

    /// <summary>One type1 container's mappings as last checked, by IOVA, with their sums.</summary>
    private sealed class ContainerCharges
    {
        private static readonly Comparer<MappingCharge> ByIova = Comparer<MappingCharge>.Create((a, b) => a.Iova.CompareTo(b.Iova));
        private readonly SortedSet<MappingCharge> _mappings = new(ByIova);

        public int Count => _mappings.Count;

        public ulong Pins { get; private set; }

        public int VaddrInvalid { get; private set; }

        public Dictionary<AddressSpace, MmCharge> PerMm { get; } = new(ReferenceEqualityComparer.Instance);

        /// <summary>Forgets the mappings starting in <paramref name="window"/> and keeps <paramref name="now"/> instead.</summary>
        public void Replace(ByteRange window, List<MappingCharge> now)
        {
            AddressSpace? none = null;
            List<MappingCharge> gone = [.. _mappings.GetViewBetween(new MappingCharge(window.Start, none!, 0, 0, false),
                new MappingCharge(window.Last, none!, 0, 0, false))];
            foreach (MappingCharge m in gone)
            {
                _mappings.Remove(m);
                Account(m, -1);
            }
            foreach (MappingCharge m in now)
            {
                if (_mappings.Add(m))
                {
                    Account(m, 1);
                }
            }
        }

        private void Account(MappingCharge m, int sign)
        {
            Pins = sign > 0 ? Pins + m.Pins : Pins - m.Pins;
            VaddrInvalid += m.VaddrInvalid ? sign : 0;
            if (!PerMm.TryGetValue(m.Mm, out MmCharge? c))
            {
                c = new MmCharge();
                PerMm.Add(m.Mm, c);
            }
            c.Charged += sign * m.LockedVm;
            c.Mappings += sign;
            if (c.Mappings == 0)
            {
                PerMm.Remove(m.Mm);
            }
        }
    }
}
