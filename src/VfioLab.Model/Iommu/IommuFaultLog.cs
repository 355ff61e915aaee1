using VfioLab.Addressing;

namespace VfioLab.Iommu;

/// <summary>One recorded DMA fault: the device, the IOVA it used, read or write, and why
/// (a DMAR fault record / SMMU event queue entry).</summary>
internal readonly record struct IommuFault(string Device, Iova Iova, bool Write, IommuFaultReason Reason)
{
    /// <inheritdoc />
    public override string ToString() => $"{Device} {(Write ? "write" : "read")} at iova {Iova}: {Reason}";
}

/// <summary>
/// The host's log of IOMMU faults (what the DMAR fault registers or the SMMU event queue report and
/// the kernel prints). Devices' rejected DMA lands here.
/// </summary>
/// <remarks>Lock: <c>_lock</c>, a leaf lock, protects <c>_faults</c>.</remarks>
internal sealed class IommuFaultLog
{
    private readonly object _lock = new();
    private readonly List<IommuFault> _faults = [];

    /// <summary>Number of faults recorded.</summary>
    public int Count
    {
        get { lock (_lock) { return _faults.Count; } }
    }

    /// <summary>Records a fault.</summary>
    public void Record(IommuFault fault)
    {
        lock (_lock)
        {
            _faults.Add(fault);
        }
    }

    /// <summary>A copy of every fault, oldest first.</summary>
    public IReadOnlyList<IommuFault> Snapshot()
    {
        lock (_lock)
        {
            return [.. _faults];
        }
    }

    /// <summary>Forgets every fault.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _faults.Clear();
        }
    }
}
