using System.Runtime.CompilerServices;
using VfioLab.Iommu;

namespace VfioLab.Lab;

/// <summary>
/// Numbers the model objects a <see cref="LabHost"/> hands out snapshots of but that have no number of their own
/// (sPAPR TCE tables), so a caller can tell one object from another across snapshots. Numbers start at 1 in the order
/// first asked for and are never reused; the table keeps no object alive.
/// </summary>
/// <remarks>Lock: <c>_gate</c> protects <c>_ids</c> and <c>_next</c>.</remarks>
internal sealed class LabObjectIds
{
    private readonly ConditionalWeakTable<TceTable, StrongBox<int>> _ids = new();
    private readonly object _gate = new();
    private int _next;

    /// <summary>The number of <paramref name="table"/>, given on first call.</summary>
    public int Of(TceTable table)
    {
        lock (_gate)
        {
            if (!_ids.TryGetValue(table, out StrongBox<int>? id))
            {
                id = new StrongBox<int>(++_next);
                _ids.Add(table, id);
            }
            return id.Value;
        }
    }
}
