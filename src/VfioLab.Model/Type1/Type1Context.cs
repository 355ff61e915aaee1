using System.Diagnostics;
using VfioLab.Diagnostics;
using VfioLab.Host;
using Process = VfioLab.Host.Process;

namespace VfioLab.Type1;

/// <summary>
/// What every part of one type1 container shares, as every function of <c>vfio_iommu_type1.c</c> shares its
/// <c>struct vfio_iommu *iommu</c>: the container lock (<c>iommu-&gt;lock</c>), the host, the behaviour switches,
/// v1 or v2, and the container's trace.
/// </summary>
/// <remarks>
/// Lock: <see cref="Lock"/> (rank <see cref="LockRank.Type1"/>) is the one lock of the whole backend state: every
/// part (<see cref="DmaTree"/>, <see cref="DomainSet"/>, <see cref="DirtyTracker"/>, ...) is protected by it, and
/// each of their <c>*Locked</c> members calls <see cref="AssertLocked"/> on entry. Lock order: the VFIO container's
/// group lock, (a vendor driver's lock,) this lock, an address space's mmap lock, then the IOMMU domains' and the
/// host memory's own locks. Nothing here changes after construction.
/// </remarks>
internal sealed class Type1Context(Machine machine, Type1Behavior behavior, bool v2, int containerId)
{
    /// <summary><c>iommu-&gt;lock</c>.</summary>
    public OrderedLock Lock { get; } = new(LockRank.Type1);

    /// <summary>The host (memory, processes, trace, fault sites).</summary>
    public Machine Machine { get; } = machine;

    /// <summary>Version switches and module parameters.</summary>
    public Type1Behavior Behavior { get; } = behavior;

    /// <summary>TYPE1v2 semantics: strict unmap, dirty tracking, external pinning.</summary>
    public bool V2 { get; } = v2;

    /// <summary>The container's number, for traces.</summary>
    public int ContainerId { get; } = containerId;

    /// <summary>log2 of the host PAGE_SIZE.</summary>
    public int PageShift => Machine.PageShift;

    /// <summary>The host PAGE_SIZE.</summary>
    public ulong PageSize => Machine.PageSize;

    /// <summary>The host's event stream.</summary>
    public TraceLog Trace => Machine.Trace;

    /// <summary>The host's fault sites.</summary>
    public FaultInjector Faults => Machine.Faults;

    /// <summary>lockdep_assert_held(&amp;iommu-&gt;lock): the first line of every <c>*Locked</c> member of type1.</summary>
    [Conditional("DEBUG")]
    public void AssertLocked() => Lock.AssertHeld();

    /// <summary>Emits one event of this container (free when tracing is off).</summary>
    public void Emit(TraceKind kind, Process? process, params KeyValuePair<string, object>[] fields) =>
        Trace.EmitForContainer(kind, process?.Pid ?? 0, ContainerId, fields);

    /// <summary>Tells the invariant checker's journal that this call changes <paramref name="size"/> bytes of IOVA from
    /// <paramref name="iova"/> and nothing outside them (MAP_DMA, UNMAP_DMA; a wrapping range is cut at the top). With
    /// <paramref name="observe"/> false (a MAP that will link a new mapping) nothing is recorded and the checker reads
    /// nothing before the call: the MAP counts its link when it has (<see cref="DeclareLinked"/>).</summary>
    public void DeclareChange(ulong iova, ulong size, bool observe = true)
    {
        // A MAP that will link its mapping counts its link when it has (DeclareLinked, under the lock it holds: no journal
        // round trip, issue 16); one that fails declares nothing, and the next check is the full sweep.
        if (observe)
        {
            Machine.Changes.DeclareType1(ContainerId, iova, size == 0 ? iova : iova + Math.Min(size - 1, ulong.MaxValue - iova));
        }
    }

    /// <summary>Tells the journal that this MAP_DMA linked its new mapping at exactly the declared range, which held no
    /// mapping before (the link's own overlap test): the checker's narrow check starts from that instead of a reading
    /// of the range taken before the call. Called with <see cref="Lock"/> held, as the last thing a MAP that succeeded
    /// does: the mapping is handed over (<see cref="LinkedForCheckLocked"/>) with how many times each lock guarding what
    /// the MAP wrote had been taken by then (<see cref="HandOverForCheckLocked"/>), so the check after the call can prove
    /// that nothing was written since without taking them (Checks/InvariantChecker.HandOver.cs). Only while a checker
    /// watches (the journal is not wide): a host nobody checks reads no counter.</summary>
    public void DeclareLinked(VfioDma dma)
    {
        AssertLocked();
        LinkedForCheckLocked = dma;
        // Counted here, under this lock, instead of recorded in the journal under its gate (issue 16, branch checks4: one
        // atomic round trip less per MAP): the checker reads the count after the journal's count of calls, and a call
        // counted there that linked has its link counted here (Checks/InvariantChecker.Incremental.cs, TakeLinked).
        Volatile.Write(ref _linkedCount, _linkedCount + 1);
        if (Machine.Changes.Watched)
        {
            HandOverForCheckLocked = EntriesForCheckLocked();
        }
    }

    private int _linkedCount;

    /// <summary>How many MAP_DMA calls linked a mapping and handed it over (<see cref="DeclareLinked"/>) since the
    /// container was created, read without the lock (a wrapping count: the checker takes differences). Written only
    /// under <see cref="Lock"/>, so <see cref="LinkedForCheckLocked"/> is the mapping of the count read under it.</summary>
    public int LinkedCountForCheck => Volatile.Read(ref _linkedCount);

    /// <summary>A MAP_DMA or UNMAP_DMA took <see cref="Lock"/>: while a checker watches, records how many times each
    /// lock guarding what it may write had been taken (<see cref="StartForCheckLocked"/>), so the check after it can prove
    /// that nothing was written between the last check and this call (issue 16).</summary>
    public void NoteCallStartLocked()
    {
        AssertLocked();
        if (Machine.Changes.Watched)
        {
            StartForCheckLocked = EntriesForCheckLocked();
        }
    }

    /// <summary>The lock entry counts now: this lock's, the domains' page-table locks' summed, host memory's (lock
    /// held).</summary>
    public HandOverEntries EntriesForCheckLocked() =>
        new(Lock.EntriesForCheck, DomainsForCheck?.LockEntriesForCheckLocked() ?? 0, Machine.Memory.LockEntriesForCheck);

    /// <summary>The lock entry counts the last MAP_DMA or UNMAP_DMA recorded when it took <see cref="Lock"/>
    /// (<see cref="NoteCallStartLocked"/>, while a checker watches).</summary>
    public HandOverEntries StartForCheckLocked { get; private set; }

    /// <summary>The mapping the last MAP_DMA that linked one handed to the checker (<see cref="DeclareLinked"/>), lock
    /// held. A hint only, and possibly stale (unmapped since, or a spare renewed for another range): the checker uses it
    /// only for the call the journal says linked, and only after finding it linked in the tree at exactly that call's
    /// range (Checks/InvariantChecker.InPlace.cs), or after proving by <see cref="HandOverForCheckLocked"/> that nothing
    /// took a lock guarding the container, its page tables or host memory since (Checks/InvariantChecker.HandOver.cs).</summary>
    public VfioDma? LinkedForCheckLocked { get; private set; }

    /// <summary>How many times this container's lock, its domains' page-table locks (summed) and host memory's lock had
    /// been taken when the last MAP_DMA handed its mapping over (<see cref="DeclareLinked"/>, while a checker watches).</summary>
    public HandOverEntries HandOverForCheckLocked { get; private set; }

    /// <summary>Whether a one-page MAP_DMA and UNMAP_DMA take their straight lanes (DmaPinning.PinMapOnePageLocked,
    /// DmaMapUnmap.TryUnmapExactlyOneLocked) where those apply; false sends them through the batch paths, the reference the
    /// lanes are tested against on a twin host (Type1TestHooks.UseBatchPathsForTest). Only tests clear it.</summary>
    public bool OnePageLanes { get; set; } = true;

    /// <summary>How many one-page MAP_DMAs and UNMAP_DMAs their lanes finished (under <see cref="Lock"/>; a plain count
    /// the twin-host tests read to know the lanes were taken).</summary>
    public int OnePageLanesTaken { get; set; }

    /// <summary>The domains, for <see cref="DeclareLinked"/>'s counts (set once by the backend that owns them).</summary>
    public DomainSet? DomainsForCheck { get; set; }
}

/// <summary>Lock entry counts (<see cref="OrderedLock.EntriesForCheck"/>) at a MAP_DMA's hand-over: the container's
/// lock, its domains' page-table locks summed, host memory's lock.</summary>
internal readonly record struct HandOverEntries(int Container, int Domains, int Memory);
