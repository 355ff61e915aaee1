namespace VfioLab.Collections;

// Packed leaves an unmap emptied, kept (up to a bound the owner sets) for the next whole-leaf append (TryAppendPackedLeaf):
// an IOMMU table's MAP on memory shattered into 1-page runs writes one new packed leaf per 64 pages, which the UNMAP
// that follows drops again, and that garbage made the collector run once a 4 GiB MAP+UNMAP pair (issue 16).
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    // Chained through Next, taken in the order they were freed (an UNMAP frees in IOVA order, so the next MAP's leaves
    // lie in memory in the order the first MAP allocated them); each holds its packed array of the map's full size
    // (Keys, Lasts, Values empty).
    private Leaf? _freeLeaves;
    private Leaf? _freeLeavesTail;
    private int _freeLeafCount;
    private int _freeLeafLimit;

    /// <summary>How many emptied packed leaves the map keeps for reuse by later appends (0, the default: none). The
    /// kept leaves are memory the map no longer maps: an owner sets this only where MAP and UNMAP of the same sizes
    /// repeat, and bounds it.</summary>
    public int FreeLeafLimit
    {
        get => _freeLeafLimit;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _freeLeafLimit = value;
            while (_freeLeafCount > value)
            {
                _ = TakeFreedLeaf();
            }
        }
    }

    /// <summary>Emptied packed leaves kept now (for tests and the probe).</summary>
    internal int FreeLeafCount => _freeLeafCount;

    // A leaf the tree just let go of (unlinked, not on any path): kept if it is packed at full size and the bound allows.
    private void KeepFreedLeaf(Leaf leaf)
    {
        if (_freeLeafCount >= _freeLeafLimit || leaf.Packed is not { } packed || packed.Length != _capacity + Leaf.Header)
        {
            return;
        }
        leaf.Count = 0;
        leaf.Prev = null;
        leaf.Next = null;
        if (_freeLeavesTail is null)
        {
            _freeLeaves = leaf;
        }
        else
        {
            _freeLeavesTail.Next = leaf;
        }
        _freeLeavesTail = leaf;
        _freeLeafCount++;
    }

    // The earliest kept leaf, taken off the list (null when none is kept).
    private Leaf? TakeFreedLeaf()
    {
        Leaf? leaf = _freeLeaves;
        if (leaf is not null)
        {
            _freeLeaves = leaf.Next;
            leaf.Next = null;
            _freeLeafCount--;
            if (_freeLeaves is null)
            {
                _freeLeavesTail = null;
            }
        }
        return leaf;
    }
}
