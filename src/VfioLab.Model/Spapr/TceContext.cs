using System.Diagnostics;
using VfioLab.Diagnostics;
using VfioLab.Host;
using Process = VfioLab.Host.Process;

namespace VfioLab.Spapr;

/// <summary>
/// What every part of one sPAPR TCE container shares, as every function of <c>vfio_iommu_spapr_tce.c</c> shares its
/// <c>struct tce_container *container</c>: the container lock (<c>container-&gt;lock</c>), the host, the driver (its
/// behaviour switches and the per-mm registry every container shares), v1 or v2, and the container's trace.
/// </summary>
/// <remarks>
/// Lock: <see cref="Lock"/> (rank <see cref="LockRank.SpaprContainer"/>) is the one lock of the container's state:
/// every part (<see cref="TceContainerMm"/>, <see cref="TceGroupSet"/>, <see cref="TceWindows"/>,
/// <see cref="TceMapping"/>, <see cref="PreregisteredMemory"/>) is protected by it, and each of their <c>*Locked</c>
/// members calls <see cref="AssertLocked"/> on entry. The model takes it for every ioctl (Linux leaves MAP/UNMAP
/// unlocked). Lock order: the VFIO container's group lock, this lock, an mm's mmap lock (pinning, accounting), a TCE
/// table's lock, the per-mm region list, host memory. Nothing here changes after construction.
/// </remarks>
internal sealed class TceContext(Machine machine, VfioIommuSpaprTceDriver driver, bool v2, int containerId)
{
    /// <summary><c>container-&gt;lock</c>.</summary>
    public OrderedLock Lock { get; } = new(LockRank.SpaprContainer);

    /// <summary>The host.</summary>
    public Machine Machine { get; } = machine;

    /// <summary>The driver that opened the container.</summary>
    public VfioIommuSpaprTceDriver Driver { get; } = driver;

    /// <summary>Version switches.</summary>
    public SpaprBehavior Behavior => Driver.Behavior;

    /// <summary>Each mm's pre-registered regions (<c>mm-&gt;context</c>), shared by every container.</summary>
    public SpaprMmRegistry Mms => Driver.Mms;

    /// <summary>VFIO_SPAPR_TCE_v2_IOMMU: pre-registration, dynamic windows, the userspace view.</summary>
    public bool V2 { get; } = v2;

    /// <summary>The VFIO container's number, for traces.</summary>
    public int ContainerId { get; } = containerId;

    /// <summary>log2 of the host PAGE_SIZE.</summary>
    public int PageShift => Machine.PageShift;

    /// <summary>lockdep_assert_held(&amp;container-&gt;lock): the first line of every <c>*Locked</c> member of the
    /// container's parts.</summary>
    [Conditional("DEBUG")]
    public void AssertLocked() => Lock.AssertHeld();

    /// <summary>Emits one event of this container (free when tracing is off).</summary>
    public void Emit(TraceKind kind, Process? process, params KeyValuePair<string, object>[] fields) =>
        Machine.Trace.EmitForContainer(kind, process?.Pid ?? 0, ContainerId, fields);
}
