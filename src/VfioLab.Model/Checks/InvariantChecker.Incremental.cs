using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Host;
using VfioLab.Type1;
using VfioLab.Vfio;

namespace VfioLab.Checks;

// The incremental check (issue 16): after a call, only what the call changed. The host's change journal
// (Host/ChangeJournal.cs) says whether the one call since the last check was a type1 MAP_DMA or UNMAP_DMA that declared
// its IOVA range; a MAP that linked its mapping counted its link under its container's lock instead (Type1Context.
// DeclareLinked, TakeLinked here): its range held nothing before, so
// nothing was read then; it also handed the mapping over, which the check verifies against the tree's links and reads
// alone, without searching (TryCheckHandedOver). For any other declared call the journal told this checker of the range before the call ran
// (BeforeChange), and the checker read then what the window (the range, the mappings overlapping it and the gaps beside
// it up to the neighbouring mappings) held: its mappings' count, vaddr_invalid, pins and charges per mm. After the call
// the window is read again in place, under the container's lock (InvariantChecker.InPlace.cs); the sums over every mapping
// (dma-avail-conserved, vaddr-invalid-count, the per-mm half of locked-vm-matches-charges, locked-vm-within-limit,
// pins-balanced) are running totals, kept from the last full sweep and moved by what the window held after the call
// minus what it held before. Nothing is kept per mapping. When the in-place read finds anything out of the ordinary
// (an unpinned frame, a count that does not add up, device memory, external pins, a pending invalidation, ...) the
// window is checked again through a windowed snapshot with the full sweep's checks, which say exactly what is wrong.
// Anything else — a state not known to be consistent (the last check found something, or none ran yet), more than one
// call since the last check, a call that declared nothing, a container holding devices — is the full sweep. Starting
// from a consistent state, a violation can only appear where a call changed something, so it finds the same invariants
// broken as the full sweep (InvariantCheckerIncrementalTests, IncrementalEquivalenceTests).
internal sealed partial class InvariantChecker
{
    // What the incremental check keeps is one checker's: calls on several threads (LabHost checking after every
    // call) check one at a time. A spin gate (Host/SpinGate.cs): taken by every check, so its cost counts (issue 16).
    private SpinGate _gate;
    private readonly List<(int Container, ulong Start, ulong Last)> _ranges = [];
    private readonly List<InvariantViolation> _scratch = [];

    // What BeforeChange read, under its own lock: it runs on the calling thread, which may hold locks a check takes
    // (the check holds _gate while it reads containers), so it never waits for _gate.
    private readonly Lock _captureGate = new();
    private Capture _capture;

    // Whether _capture may hold something (set with it, under _captureGate): a check after a MAP that linked its
    // mapping, which nothing observed before the call, does not take the lock to find it empty.
    private bool _capturePending;
    private Action<int, ulong, ulong>? _observer;

    // The running totals as of the last check, when it found the state consistent; null otherwise.
    private Totals? _totals;

    /// <summary>Whether the last check looked only at what changed (false: it was the full sweep).</summary>
    public bool LastWasIncremental { get; private set; }

    /// <summary>Whether the last incremental check read the window in place only (false: it also took the windowed
    /// snapshot, because something in the window was out of the ordinary). For tests and benchmarks.</summary>
    internal bool LastWasInPlace { get; private set; }

    /// <summary>How many checks so far looked only at what changed (for tests).</summary>
    internal long IncrementalChecks { get; private set; }

    /// <summary>For tests: every <see cref="CheckChanges"/> is the full sweep (the reference the incremental check is
    /// compared with).</summary>
    internal bool SweepAlways { get; set; }

    /// <summary>Checks what changed since the last check: the declared range when that is all that changed and the
    /// state was consistent then, the whole host otherwise (<see cref="Check"/>).</summary>
    public IReadOnlyList<InvariantViolation> CheckChanges()
    {
        _gate.Enter();
        try
        {
            Observe(replace: true);
            return CheckChangesLocked();
        }
        finally
        {
            _gate.Exit();
        }
    }

    // The journal tells one checker per host what a call is about to change: the one that checks incrementally (a
    // checker used only for full sweeps, as tests make beside the host's own, takes the place only when it is free).
    private void Observe(bool replace)
    {
        _observer ??= BeforeChange;
        host.Machine.Changes.Observe(_observer, replace);
    }

    private IReadOnlyList<InvariantViolation> CheckChangesLocked()
    {
        _ranges.Clear();
        Totals? totals = _totals;
        if (SweepAlways || totals is null)
        {
            return Sweep();
        }
        bool recorded = host.Machine.Changes.TryTakeRecord(_ranges, out int calls);
        bool linked = false;
        // Read after the journal's count of calls: every call counted there that linked a mapping is counted here.
        int mapsLinked = TakeLinked(totals, out ContainerTotals? linkedIn, out int linkedCount);
        // One call, which declared one range: in the journal, or by linking its mapping (Type1Context.DeclareLinked).
        bool narrow = recorded && calls == 1 && _ranges.Count + mapsLinked == 1;
        if (narrow && mapsLinked == 1)
        {
            // The check after a one-page MAP first (InvariantChecker.HandOver.cs), in a frame of its own size: what the
            // rest keeps on the stack (the capture, the window's sums) is zeroed on every entry (issue 16: every call's
            // check). The mapping read here without the lock is a hint the hand-over's counts prove or refute.
            if (!Volatile.Read(ref _capturePending) && linkedIn!.Iommu.HandOverUnlockedForCheck.Linked is { } hint
                && TryCheckByHandOver(totals, linkedIn, hint.Range, out IReadOnlyList<InvariantViolation>? handedOver))
            {
                return handedOver;
            }
            // Otherwise the mapping the counted MAP linked, under the lock (a later MAP may have handed over another).
            if (linkedIn!.Iommu.LinkedForCheck(linkedCount) is not { } d)
            {
                return Sweep();
            }
            _ranges.Add((linkedIn.Container.Id, d.Range.Start, d.Range.Last));
            linked = true;
        }
        return CheckTakenLocked(totals, narrow, linked);
    }

    // How many MAP_DMA calls linked a mapping, in every container the totals know, since the last check took them: the
    // container of the last one and its count. A container the totals do not know came after the last sweep, by a call
    // that declared nothing, whose check is the full sweep.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int TakeLinked(Totals totals, out ContainerTotals? last, out int count)
    {
        int linked = 0;
        last = null;
        count = 0;
        ContainerTotals[] all = totals.All;
        for (int i = 0; i < all.Length; i++)
        {
            ContainerTotals ct = all[i];
            int now = ct.Iommu.LinkedCountForCheck;
            int since = unchecked(now - ct.LinkedTaken);
            if (since != 0)
            {
                ct.LinkedTaken = now;
                linked += since;
                last = ct;
                count = now;
            }
        }
        return linked;
    }

    // The check of what the journal's record said (narrow or not, linked or not), when the hand-over alone did not do.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private IReadOnlyList<InvariantViolation> CheckTakenLocked(Totals totals, bool narrow, bool linked)
    {
        Capture before = default;
        if (Volatile.Read(ref _capturePending))
        {
            lock (_captureGate)
            {
                before = _capture;
                _capture = default;
                _capturePending = false;
            }
        }
        if (!narrow || _ranges.Count != 1 || !totals.TryGetContainer(_ranges[0].Container, out ContainerTotals? ct))
        {
            return Sweep();
        }
        if (linked)
        {
            // A MAP whose hand-over counts did not do (CheckChangesLocked): from the mapping it handed over, read in place.
            var linkedRange = new ByteRange(_ranges[0].Start, _ranges[0].Last);
            if (TryCheckHandedOver(totals, ct, linkedRange, out IReadOnlyList<InvariantViolation>? result))
            {
                return result;
            }
        }
        if (linked)
        {
            // A MAP linked a new mapping at exactly its range, which held no mapping before (the link's own overlap
            // test, under the lock the call held): nothing was read before the call, and nothing leaves the totals.
            // The window (the range and the gaps beside it) is found after the call, in the pass.
            before = new Capture(true, _ranges[0].Container, _ranges[0].Start, _ranges[0].Last, default, default);
        }
        else if (!before.Valid || before.Container != _ranges[0].Container || before.Start != _ranges[0].Start || before.Last != _ranges[0].Last)
        {
            return Sweep();
        }
        _totals = null;
        var changed = new ByteRange(before.Start, before.Last);
        WindowSums now = default;
        Counters counters = default;
        InPlaceOutcome outcome = CheckWindowInPlace(ct.Iommu, changed, linked, ref before, ref now, ref counters, out ulong hostPins);
        if (outcome == InPlaceOutcome.Sweep)
        {
            return Sweep();
        }
        int mappings = ct.Mappings + now.Mappings - before.Sums.Mappings;
        int invalid = ct.VaddrInvalid + now.VaddrInvalid - before.Sums.VaddrInvalid;
        List<InvariantViolation> found = _scratch;
        found.Clear();
        LastWasInPlace = outcome == InPlaceOutcome.Clean && counters.Agree(mappings, invalid);
        if (!LastWasInPlace)
        {
            // Something in the window is out of the ordinary: the full sweep's checks over a windowed snapshot say what.
            var t = new Type1State(ct.Container, ct.Iommu.Snapshot(changed));
            if (t.Snapshot.DevicePfnmaps.Count > 0)
            {
                return Sweep();
            }
            CheckType1Container(t, whole: false, found);
            now = SumsOf(t, before.Window);
            if (now.Overflow)
            {
                return Sweep();
            }
            mappings = ct.Mappings + now.Mappings - before.Sums.Mappings;
            invalid = ct.VaddrInvalid + now.VaddrInvalid - before.Sums.VaddrInvalid;
            CheckDmaAvail(t, mappings, found);
            CheckCounters(t, invalid, found);
            CheckDeviceMemory([t], found);
            hostPins = host.Machine.Memory.TotalPins;
        }
        ct.Mappings = mappings;
        ct.VaddrInvalid = invalid;
        totals.Type1Pins = totals.Type1Pins + now.Pins - before.Sums.Pins;
        WindowSums gone = before.Sums;
        if (!totals.MoveCharges(in gone, in now))
        {
            return Sweep();
        }
        CheckMmTotals(totals.Mms, found);
        if (totals.PinsComparable)
        {
            ReportPins(hostPins, totals.SpaprPins + totals.Type1Pins, totals.Backends, found);
        }
        if (!LastWasInPlace)
        {
            // A window read clean in place translates RAM only, every frame pinned: the call pinned RAM and followed no
            // device's pfnmap, and a GUP of RAM never faults in a BAR's CPU page; the BARs' decode state changes only
            // by calls that declare no range (config writes, resets, release: the full sweep). Otherwise, as the sweep.
            foreach (SimulatedPci d in totals.PciDevices)
            {
                CheckBarMapping(d.Device, d.Pci, found);
            }
        }
        LastWasIncremental = true;
        IncrementalChecks++;
        if (found.Count == 0)
        {
            RecordEntries(totals, ct);
            _totals = totals;
            return [];
        }
        return [.. found];
    }

    // The check after a MAP_DMA that linked its mapping (issue 16), from what the MAP handed over
    // (Type1Context.DeclareLinked): the mapping, once the tree's links show it linked at exactly the declared range with
    // the gaps beside it up to its neighbours (DmaTree.TryLinkedWindowForCheckLocked: one walk up, no search), read in
    // place in one lock round trip of the container (AloneLocked: the first domain's runs over the window in one copy,
    // its frames' pins in one batch), and the running totals moved by what it holds (nothing leaves them: the range held
    // no mapping before). False when anything is not clean or not as expected: the caller checks the call as before
    // (the windowed pass searching the tree, then the windowed snapshot with the full sweep's messages), so what is
    // reported never comes from here.
    private bool TryCheckHandedOver(Totals totals, ContainerTotals ct, ByteRange changed, [NotNullWhen(true)] out IReadOnlyList<InvariantViolation>? result)
    {
        result = null;
        VfioIommu iommu = ct.Iommu;
        WindowSums now = default;
        Counters counters = default;
        ulong hostPins = 0;
        using (iommu.CheckLock.EnterScope())
        {
            bool clean = !iommu.DevicesTakePartForCheckLocked && iommu.LinkedForCheckLocked is { } d && d.Range.Start == changed.Start
                && d.Range.Last == changed.Last && iommu.TreeForCheck.TryLinkedWindowForCheckLocked(d, out ByteRange gaps)
                && AloneLocked(iommu, d, gaps, ref now, ref counters, out hostPins);
            TrimFrames();
            if (!clean)
            {
                return false;
            }
        }
        result = Conclude(totals, ct, ref now, in counters, hostPins);
        if (result is null)
        {
            return false;
        }
        if (result.Count == 0)
        {
            RecordEntries(totals, ct);
        }
        HandedOverChecks++;
        return true;
    }

    // After a check found the state consistent: the lock entry counts as it leaves them, against which the next call's
    // own (Type1Context.NoteCallStartLocked) prove that nothing was written in between (InvariantChecker.HandOver.cs).
    private void RecordEntries(Totals totals, ContainerTotals ct)
    {
        HandOverEntries e;
        VfioIommu iommu = ct.Iommu;
        using (iommu.CheckLock.EnterScope())
        {
            e = iommu.EntriesForCheckLocked();
            // The view the check after a one-page MAP uses without the lock (one domain or none; no devices).
            Counters counters = default;
            ContainerView view = default;
            ct.ViewKnown = iommu.DomainsForCheck.DomainsLocked.Count <= 1 && !iommu.DevicesTakePartForCheckLocked
                && TryViewLocked(iommu, Everything, ref counters, out view);
            ct.View = view;
            ct.ViewCounters = counters;
        }
        ct.CheckedEntries = e with { Container = iommu.CheckLock.EntriesForCheck };
        totals.CheckedMemory = host.Machine.Memory.LockEntriesForCheck;
    }

    // The end of a check after a MAP that linked its mapping, from what the window held after the call (nothing left the
    // totals: the range held no mapping before): null when the container's counters do not say what the running counts
    // say (the caller reads the call again, and the windowed snapshot reports it); otherwise the totals moved and the
    // sums over every mapping checked.
    private IReadOnlyList<InvariantViolation>? Conclude(Totals totals, ContainerTotals ct, ref WindowSums now, in Counters counters, ulong hostPins)
    {
        int mappings = ct.Mappings + now.Mappings;
        int invalid = ct.VaddrInvalid + now.VaddrInvalid;
        if (!counters.Agree(mappings, invalid))
        {
            return null;
        }
        _totals = null;
        ct.Mappings = mappings;
        ct.VaddrInvalid = invalid;
        totals.Type1Pins += now.Pins;
        WindowSums none = default;
        if (!totals.MoveCharges(in none, in now))
        {
            return Sweep();
        }
        return ConcludeTotals(totals, hostPins);
    }

    // The end of an incremental check once the totals have moved by what the call changed: the mms' charges against
    // their limits and the host's pins against the backends', the totals kept for the next check when clean.
    private IReadOnlyList<InvariantViolation> ConcludeTotals(Totals totals, ulong hostPins)
    {
        List<InvariantViolation> found = _scratch;
        found.Clear();
        CheckMmTotals(totals.Mms, found);
        // The comparison inline, the reporting a call (issue 16: after every call).
        if (totals.PinsComparable && hostPins != totals.SpaprPins + totals.Type1Pins)
        {
            ReportPins(hostPins, totals.SpaprPins + totals.Type1Pins, totals.Backends, found);
        }
        LastWasInPlace = true;
        LastWasIncremental = true;
        IncrementalChecks++;
        if (found.Count == 0)
        {
            // Stored only when the caller let go of it (Conclude): a reference store is a GC write barrier, ~1 % of the
            // checked 65,535-call run's CPU where ConcludeOne keeps the totals in place (issue 16).
            if (!ReferenceEquals(_totals, totals))
            {
                _totals = totals;
            }
            return [];
        }
        _totals = null;
        return [.. found];
    }

    // The journal's observer: the first range declared since the last check is about to change. Reads, under the
    // container's lock, what the window around it holds before the call: what the running totals lose if the call
    // removes or replaces it. The state is the consistent one the last check saw (only one call since, and the totals
    // exist only after a clean check), so each mapping's pins are its locked_vm (with domains; none without): the
    // per-mapping check holds that, and reading it costs nothing where walking a large neighbour's translations would.
    // Mappings with external pins, or with domains and an exited mm, make the capture invalid (the next check sweeps).
    private void BeforeChange(int container, ulong start, ulong last)
    {
        Totals? totals = Volatile.Read(ref _totals);
        Capture capture = default;
        if (totals is not null && totals.Containers.TryGetValue(container, out ContainerTotals? ct))
        {
            WindowSums sums = default;
            bool valid = true;
            ByteRange window;
            using (ct.Iommu.CheckLock.EnterScope())
            {
                DmaTree tree = ct.Iommu.TreeForCheck;
                bool domains = ct.Iommu.DomainsForCheck.HasDomainLocked;
                window = tree.CheckGapWindowLocked(start, last);
                foreach (Run<DmaRef> r in tree.RunsLocked(window))
                {
                    VfioDma d = r.Value.Dma;
                    if (d.HasExternalPins || (domains && !d.Mm.IsAlive))
                    {
                        valid = false;
                        break;
                    }
                    if (r.Start == d.Range.Start)
                    {
                        sums.Add(d.Mm, d.LockedVm, d.VaddrInvalid, domains ? (ulong)d.LockedVm : 0);
                    }
                }
            }
            if (valid && !sums.Overflow)
            {
                capture = new Capture(true, container, start, last, window, sums);
            }
        }
        lock (_captureGate)
        {
            _capture = capture;
            _capturePending = true;
        }
    }

    // The sums of a windowed snapshot's mappings that overlap the window the capture read.
    private static WindowSums SumsOf(Type1State t, ByteRange window)
    {
        WindowSums sums = default;
        IReadOnlyList<VfioDmaSnapshot> mappings = t.Snapshot.Mappings;
        for (int i = 0; i < mappings.Count; i++)
        {
            VfioDmaSnapshot m = mappings[i];
            if (m.Range.Overlaps(window))
            {
                sums.Add(m.Mm, m.LockedVm, m.VaddrInvalid, t.PinsPerMapping[i]);
            }
        }
        return sums;
    }

    // The per-mm half of §4.5 and §2.9 from the running totals: every mm the full sweep would check.
    // Every check after a call (issue 16): the two comparisons inline, the reporting (string formatting, which keeps
    // ReportMmCharge from being inlined) only when one of them fails; ReportMmCharge was ~1 % of the checked 65,535-call
    // run's CPU as a call per mm per check.
    private static void CheckMmTotals(KeyValuePair<AddressSpace, MmCharge>[] mms, List<InvariantViolation> found)
    {
        for (int i = 0; i < mms.Length; i++)
        {
            (AddressSpace mm, MmCharge c) = mms[i];
            if (mm.IsAlive)
            {
                ulong locked = mm.LockedVm;
                if (locked != unchecked((ulong)c.Charged) || locked > mm.ChargeLimitPages)
                {
                    ReportMmCharge(mm, c, found);
                }
            }
        }
    }

    // After a full sweep: keep the running totals when the state is consistent, for the next incremental check;
    // forget them otherwise.
    private void Remember(List<Type1State> type1, SpaprTotals spapr, Dictionary<AddressSpace, MmCharge> perMm, ulong type1Pins, int backends, bool consistent)
    {
        LastWasIncremental = false;
        LastWasInPlace = false;
        _totals = null;
        lock (_captureGate)
        {
            _capture = default;
            _capturePending = false;
        }
        if (!consistent)
        {
            return;
        }
        var containers = new Dictionary<int, ContainerTotals>(type1.Count);
        foreach (Type1State t in type1)
        {
            if (t.Container.Iommu is VfioIommu iommu)
            {
                // The count of MAPs that linked as the sweep's take left it (a MAP counted since, whose call the take
                // counted, makes the next check the full sweep: one call, no declaration).
                containers.Add(t.Container.Id, new ContainerTotals(t.Container, iommu)
                {
                    Mappings = t.MappingCount,
                    VaddrInvalid = t.VaddrInvalid,
                    LinkedTaken = iommu.LinkedCountForCheck,
                });
            }
        }
        var pci = new List<SimulatedPci>();
        foreach (Simulation.SimulatedDevice d in host.Devices.Values)
        {
            if (d.Vfio?.Hardware is Vfio.Pci.VfioPciDevice p)
            {
                pci.Add(new SimulatedPci(d, p));
            }
        }
        var totals = new Totals(containers, perMm, pci)
        {
            Type1Pins = type1Pins,
            SpaprPins = spapr.PinsHeld,
            Backends = backends,
            PinsComparable = backends == type1.Count + spapr.Containers,
        };
        foreach (ContainerTotals ct in containers.Values)
        {
            RecordEntries(totals, ct);
        }
        Volatile.Write(ref _totals, totals);
    }

    /// <summary>What the journal's observer read before the call: the range it was told of, the window around it and
    /// what the window's mappings held.</summary>
    private readonly record struct Capture(bool Valid, int Container, ulong Start, ulong Last, ByteRange Window, WindowSums Sums);

    /// <summary>The running totals: what the full sweep sums over every mapping, as of the last check.</summary>
    private sealed class Totals(Dictionary<int, ContainerTotals> containers, Dictionary<AddressSpace, MmCharge> perMm, List<SimulatedPci> pciDevices)
    {
        public Dictionary<int, ContainerTotals> Containers { get; } = containers;

        /// <summary><see cref="Containers"/>' values, walked by every check (the set changes only with a sweep).</summary>
        public ContainerTotals[] All { get; } = [.. containers.Values];

        /// <summary>Per live mm: what type1 mappings and sPAPR charged to it, and how many of them.</summary>
        public Dictionary<AddressSpace, MmCharge> PerMm { get; } = perMm;

        /// <summary><see cref="PerMm"/> as an array, walked by every check (the set of mms changes only with a sweep).</summary>
        public KeyValuePair<AddressSpace, MmCharge>[] Mms { get; } = [.. perMm];

        // The container the last check found (a run of calls on one container finds the same one every time).
        private ContainerTotals? _lastContainer;

        /// <summary>The running counts of container <paramref name="id"/>, if the last sweep knew it.</summary>
        public bool TryGetContainer(int id, [NotNullWhen(true)] out ContainerTotals? ct)
        {
            if (_lastContainer is { } last && last.Container.Id == id)
            {
                ct = last;
                return true;
            }
            if (!Containers.TryGetValue(id, out ct))
            {
                return false;
            }
            _lastContainer = ct;
            return true;
        }

        // The mm the last move found (a run of calls by one process finds the same one every time).
        private AddressSpace? _lastMm;
        private MmCharge? _lastCharge;

        /// <summary>vfio-pci devices, for no-cpu-mapping-of-disabled-bar (devices come and go only with wide events).</summary>
        public List<SimulatedPci> PciDevices { get; } = pciDevices;

        public ulong Type1Pins { get; set; }

        public ulong SpaprPins { get; init; }

        public int Backends { get; init; }

        public bool PinsComparable { get; init; }

        /// <summary>Host memory's lock entry count when the last check that found the state consistent ended.</summary>
        public int CheckedMemory { get; set; }

        /// <summary>Moves the per-mm charges by what the window held after the call minus before; false when an mm is
        /// not one the totals know (the next check sweeps).</summary>
        public bool MoveCharges(in WindowSums before, in WindowSums now)
        {
            for (int i = 0; i < before.MmCount; i++)
            {
                if (Find(before.Mms[i].Mm!) is not MmCharge c)
                {
                    return false;
                }
                c.Charged -= before.Mms[i].Charged;
                c.Mappings -= before.Mms[i].Mappings;
            }
            for (int i = 0; i < now.MmCount; i++)
            {
                if (Find(now.Mms[i].Mm!) is not MmCharge c)
                {
                    return false;
                }
                c.Charged += now.Mms[i].Charged;
                c.Mappings += now.Mms[i].Mappings;
            }
            return true;
        }

        /// <summary>The running charge of <paramref name="mm"/>, if the totals know it.</summary>
        public MmCharge? FindCharge(AddressSpace mm) => Find(mm);

        private MmCharge? Find(AddressSpace mm)
        {
            if (ReferenceEquals(mm, _lastMm))
            {
                return _lastCharge;
            }
            if (!PerMm.TryGetValue(mm, out MmCharge? c))
            {
                return null;
            }
            _lastMm = mm;
            _lastCharge = c;
            return c;
        }
    }

    /// <summary>One type1 container's running counts.</summary>
    private sealed class ContainerTotals(VfioContainer container, VfioIommu iommu)
    {
        public VfioContainer Container { get; } = container;

        public VfioIommu Iommu { get; } = iommu;

        public int Mappings { get; set; }

        public int VaddrInvalid { get; set; }

        /// <summary>The container's count of MAP_DMA calls that linked (<see cref="VfioIommu.LinkedCountForCheck"/>) as
        /// the last check took it.</summary>
        public int LinkedTaken { get; set; }

        /// <summary>Whether <see cref="View"/> and <see cref="ViewCounters"/> hold the container's configuration as the last
        /// check that found the state consistent left it, with one IOMMU domain or none and no device taking part (the
        /// check after a one-page MAP uses them, InvariantChecker.HandOver.cs); <see cref="CheckedEntries"/> is set with them.</summary>
        public bool ViewKnown { get; set; }

        /// <summary>The in-place pass's view of the container (<see cref="TryViewLocked"/>) as of the last check (a field:
        /// read in place, not copied, by every check after a one-page MAP).</summary>
        public ContainerView View;

        /// <summary>The container's counters as of the last check (the ones no MAP_DMA changes are used).</summary>
        public Counters ViewCounters { get; set; }

        /// <summary>The container's lock and its domains' page-table locks' entry counts when the last check that found
        /// the state consistent ended (Memory unused: <see cref="Totals.CheckedMemory"/> is host-wide).</summary>
        public HandOverEntries CheckedEntries { get; set; }
    }

    private readonly record struct SimulatedPci(Simulation.SimulatedDevice Device, Vfio.Pci.VfioPciDevice Pci);

    /// <summary>What one window's mappings hold: how many, how many with vaddr_invalid, the page pins, and the charges
    /// per live mm (at most <see cref="MmSlots.Capacity"/> mms; more is <see cref="Overflow"/>). No heap object.</summary>
    private struct WindowSums
    {
        public int Mappings;
        public int VaddrInvalid;
        public ulong Pins;
        public int MmCount;
        public bool Overflow;
        public MmSlots Mms;

        /// <summary>Counts a mapping, but not its charge.</summary>
        public void AddCounts(bool vaddrInvalid, ulong pins)
        {
            Mappings++;
            VaddrInvalid += vaddrInvalid ? 1 : 0;
            Pins += pins;
        }

        public void Add(AddressSpace mm, long lockedVm, bool vaddrInvalid, ulong pins)
        {
            AddCounts(vaddrInvalid, pins);
            if (!mm.IsAlive)
            {
                return;
            }
            for (int i = 0; i < MmCount; i++)
            {
                if (ReferenceEquals(Mms[i].Mm, mm))
                {
                    Mms[i].Charged += lockedVm;
                    Mms[i].Mappings++;
                    return;
                }
            }
            if (MmCount == MmSlots.Capacity)
            {
                Overflow = true;
                return;
            }
            Mms[MmCount++] = new MmSum { Mm = mm, Charged = lockedVm, Mappings = 1 };
        }
    }

    private struct MmSum
    {
        public AddressSpace? Mm;
        public long Charged;
        public int Mappings;
    }

    [InlineArray(Capacity)]
    private struct MmSlots
    {
        public const int Capacity = 4;
        private MmSum _first;
    }

    /// <summary>The container's counters as the in-place read found them.</summary>
    private readonly record struct Counters(ulong DmaAvail, ulong DmaEntryLimit, int DmaCount, int VaddrInvalidCount, int NumNonPinnedGroups,
        int NonPinnedCounted, int EmulatedGroups)
    {
        /// <summary>Whether the counters say what the running counts say (otherwise the windowed snapshot reports it).</summary>
        public bool Agree(int mappings, int invalid) =>
            DmaAvail + (ulong)mappings == DmaEntryLimit && DmaCount == mappings && VaddrInvalidCount == invalid && !(invalid > 0 && EmulatedGroups > 0)
            && NonPinnedCounted == NumNonPinnedGroups;
    }
}
