namespace VfioLab.Collections;

// The B+tree invariants, checked for tests.
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    /// <summary>Checks the B+tree invariants (ordering, separators, fill, leaf chain, count); throws
    /// <see cref="InvalidOperationException"/> naming the first one broken. For tests.</summary>
    internal void AssertValid()
    {
        CloseHole();
        if (_root is null)
        {
            Require(Count == 0 && _height == 0, "an empty tree holds runs");
            return;
        }
        Leaf? previous = null;
        int runs = 0;
        ValidateNode(_root, 0, 0, ulong.MaxValue, lowerBounded: false, ref previous, ref runs);
        Require(previous!.Next is null, "the last leaf has a successor");
        Require(runs == Count, $"Count {Count} but {runs} runs");
    }

    private void ValidateNode(Node node, int depth, ulong low, ulong high, bool lowerBounded, ref Leaf? previous, ref int runs)
    {
        Require(node.Count > 0, "an empty node");
        if (node is Leaf leaf)
        {
            Require(depth == _height, "leaves at different depths");
            Require(leaf.Prev == previous && (previous is null || previous.Next == leaf), "broken leaf chain");
            if (leaf.Packed is { } packed)
            {
                Require(PackedForm && leaf.Unit != 0 && packed.Length >= leaf.Count + Leaf.Header && leaf.Keys.Length == 0, "a malformed packed leaf");
                Require(leaf.Base + ((ulong)(leaf.Count - 1) * leaf.Unit) >= leaf.Base, "a packed leaf past the key space");
            }
            for (int i = 0; i < leaf.Count; i++)
            {
                Require(leaf.StartAt(i) <= leaf.LastAt(i), "a run ends before it starts");
                Require((!lowerBounded || leaf.StartAt(i) >= low) && leaf.StartAt(i) < high, "a run start outside its separators");
                Require(i == 0 || leaf.StartAt(i) > leaf.LastAt(i - 1), "runs overlap or are out of order");
            }
            Require(previous is null || leaf.FirstStart > previous.FinalLast, "runs overlap across leaves");
            for (int i = 0; i < leaf.Count; i++)
            {
                Require(!ContinuesPrevious(leaf, i), "neighbouring runs that continue each other are not merged");
            }
            previous = leaf;
            runs += leaf.Count;
            return;
        }
        var inner = (Inner)node;
        Require(depth < _height, "an inner node at leaf depth");
        for (int i = 0; i < inner.Count; i++)
        {
            ulong childLow = i == 0 ? low : inner.Keys[i];
            bool childBounded = i != 0 || lowerBounded;
            ulong childHigh = i + 1 < inner.Count ? inner.Keys[i + 1] : high;
            Require(i == 0 || inner.Keys[i] > inner.Keys[i - 1] || i == 1, "separators out of order");
            Require(i == 0 || !lowerBounded || inner.Keys[i] >= low, "a separator below its parent's");
            ValidateNode(inner.Children[i], depth + 1, childLow, childHigh, childBounded, ref previous, ref runs);
        }
    }

    /// <summary>How many leaves are in the packed form (for tests and memory probes).</summary>
    internal int PackedLeafCount()
    {
        CloseHole();
        int n = 0;
        if (_root is null)
        {
            return 0;
        }
        Node node = _root;
        for (int depth = 0; depth < _height; depth++)
        {
            node = ((Inner)node).Children[0];
        }
        for (var leaf = (Leaf?)node; leaf is not null; leaf = leaf.Next)
        {
            n += leaf.IsDense ? 1 : 0;
        }
        return n;
    }

    /// <summary>The managed bytes the tree's nodes and arrays occupy (object headers, fields and array
    /// lengths as allocated, on a 64-bit runtime), for memory probes that break a heap down by map.</summary>
    internal long ApproximateBytes()
    {
        CloseHole();
        const long ObjectHeader = 16;
        const long ArrayHeader = 24;
        return _root is null ? 0 : NodeBytes(_root);

        static long NodeBytes(Node node)
        {
            if (node is Leaf leaf)
            {
                long arrays = leaf.Packed is { } packed ? ArrayHeader + (8L * packed.Length) : 0;
                foreach (Array a in (Array[])[leaf.Keys, leaf.Lasts, leaf.Values])
                {
                    // The empty arrays a packed leaf points at are shared.
                    arrays += a.Length == 0 ? 0 : ArrayHeader + ((long)a.Length *
                        (a == leaf.Values ? System.Runtime.CompilerServices.Unsafe.SizeOf<T>() : 8));
                }
                return ObjectHeader + (7 * 8) + arrays;
            }
            var inner = (Inner)node;
            long bytes = ObjectHeader + (3 * 8) + (2 * (ArrayHeader + (8L * inner.Keys.Length)));
            for (int i = 0; i < inner.Count; i++)
            {
                bytes += NodeBytes(inner.Children[i]);
            }
            return bytes;
        }
    }

    private static bool ContinuesPrevious(Leaf leaf, int i)
    {
        ulong start = leaf.StartAt(i);
        return start != 0 && FindPrevious(leaf, i, out Leaf? pl, out int p) && pl.LastAt(p) == start - 1 &&
            pl.ValueAt(p).Advance(start - pl.StartAt(p)).Equals(leaf.ValueAt(i));
    }

    private static void Require(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"RunMap invariant broken: {what}");
        }
    }
}
