namespace VfioLab.Serve;

/// <summary>
/// One client's memory as the recorded scenario knows it: the mirror's mappings in its simulated process, each either
/// pending (the model has it, the scenario has not mapped it yet because no call named it) or written (an <c>mmap</c>
/// step recreated it at the same address). Both lists follow the model's mappings exactly: a piece the mirror
/// removes, or that a device mapping or an munmap replaces, leaves them, so what the scenario maps when a call names
/// it is what the model has there at that moment.
/// </summary>
/// <remarks>Not synchronised: the recorder uses it under the server's gate.</remarks>
internal sealed class RecordedMemory
{
    private readonly List<Piece> _pending = [];
    private readonly List<Piece> _written = [];

    /// <summary>A mapping of the mirror: [Start, End) of one kind.</summary>
    public readonly record struct Piece(ulong Start, ulong End, RealMapping Kind);

    /// <summary>A copy for a forked child, which holds what its parent held.</summary>
    public RecordedMemory Fork()
    {
        var child = new RecordedMemory();
        child._pending.AddRange(_pending);
        child._written.AddRange(_written);
        return child;
    }

    /// <summary>The mirror mapped a piece: pending until a call names it.</summary>
    public void Mapped(ulong start, ulong end, RealMapping kind) => _pending.Add(new Piece(start, end, kind));

    /// <summary>[start, end) is no longer what it was in the model (unmapped, or replaced by a fixed mapping).</summary>
    /// <returns>The parts of written pieces it removed, which the scenario must unmap too (unless a fixed mapping
    /// replaces them there as well).</returns>
    public List<Piece> Remove(ulong start, ulong end)
    {
        Cut(_pending, start, end);
        return Cut(_written, start, end);
    }

    /// <summary>The pending pieces that meet [start, end), whole, now written: the scenario maps them before the call
    /// that names them.</summary>
    public List<Piece> Name(ulong start, ulong end)
    {
        var named = new List<Piece>();
        for (int i = _pending.Count - 1; i >= 0; i--)
        {
            Piece p = _pending[i];
            if (p.Start < end && start < p.End)
            {
                named.Add(p);
                _written.Add(p);
                _pending.RemoveAt(i);
            }
        }
        named.Sort((a, b) => a.Start.CompareTo(b.Start));
        return named;
    }

    // Removes [start, end) from every piece of the list; returns the parts removed.
    private static List<Piece> Cut(List<Piece> list, ulong start, ulong end)
    {
        var removed = new List<Piece>();
        for (int i = list.Count - 1; i >= 0; i--)
        {
            Piece p = list[i];
            if (p.End <= start || end <= p.Start)
            {
                continue;
            }
            list.RemoveAt(i);
            removed.Add(p with { Start = Math.Max(p.Start, start), End = Math.Min(p.End, end) });
            if (p.Start < start)
            {
                list.Add(p with { End = start });
            }
            if (end < p.End)
            {
                list.Add(p with { Start = end });
            }
        }
        removed.Sort((a, b) => a.Start.CompareTo(b.Start));
        return removed;
    }
}
