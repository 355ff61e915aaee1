using VfioLab.Addressing;

namespace VfioLab.Type1;

// Read-only access for the invariant checker's check after a MAP_DMA that linked a mapping (issue 16: the check takes
// what the call hands over instead of searching the tree again). Nothing here changes state; the type1 lock is held.
internal sealed partial class DmaTree
{
    /// <summary><see cref="DmaAvailLocked"/>, <see cref="CountLocked"/> and <see cref="VaddrInvalidCountLocked"/> without the
    /// lock, for the checker's check after a one-page MAP_DMA, which proves by the lock's entry count that nobody took
    /// the lock since the MAP left these as they are (Checks/InvariantChecker.HandOver.cs).</summary>
    internal (uint DmaAvail, int Count, int VaddrInvalidCount) CountersUnlockedForCheck => (_dmaAvail, _count, _vaddrInvalidCount);

    /// <summary>Whether <paramref name="dma"/> is linked in this tree and is exactly the mapping it holds over its extent,
    /// found through the links instead of a descent: its parent links lead to the root, each parent naming it as a child,
    /// and its neighbours in IOVA order end before it and start after it. Then <paramref name="window"/> is the narrow
    /// check's gap window around it (<see cref="CheckGapWindowLocked"/> of its range, which a sound tree gives alike).
    /// False after a test claim (the run map beside the tree is what readers read then) or when the links say anything
    /// else: the caller searches the tree as before.</summary>
    internal bool TryLinkedWindowForCheckLocked(VfioDma dma, out ByteRange window)
    {
        _ctx.AssertLocked();
        window = default;
        if (_claimed is not null)
        {
            return false;
        }
        // One walk up the parent links proves the mapping reachable from the root and finds, on the way, its
        // neighbours where it has no child on that side: the predecessor is the first ancestor reached from its right
        // subtree, the successor the first reached from its left (rb_prev, rb_next without a second walk).
        VfioDma? before = dma.TreeLeft is { } l ? Rightmost(l) : null;
        VfioDma? after = dma.TreeRight is { } r ? Leftmost(r) : null;
        bool seekBefore = before is null;
        bool seekAfter = after is null;
        VfioDma n = dma;
        for (VfioDma? p = n.TreeParent; p is not null; p = p.TreeParent)
        {
            if (ReferenceEquals(p.TreeLeft, n))
            {
                if (seekAfter)
                {
                    after = p;
                    seekAfter = false;
                }
            }
            else if (ReferenceEquals(p.TreeRight, n))
            {
                if (seekBefore)
                {
                    before = p;
                    seekBefore = false;
                }
            }
            else
            {
                return false;
            }
            n = p;
        }
        if (!ReferenceEquals(n, _root)
            || (before is not null && before.Range.Last >= dma.Range.Start) || (after is not null && after.Range.Start <= dma.Range.Last))
        {
            return false;
        }
        window = new ByteRange(before is null ? 0 : before.Range.Last + 1, after is null ? ulong.MaxValue : after.Range.Start - 1);
        return true;
    }

    private static VfioDma Rightmost(VfioDma n)
    {
        while (n.TreeRight is { } r)
        {
            n = r;
        }
        return n;
    }

    private static VfioDma Leftmost(VfioDma n)
    {
        while (n.TreeLeft is { } l)
        {
            n = l;
        }
        return n;
    }
}
