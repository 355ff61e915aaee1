namespace VfioLab.Collections;

// The B+tree invariants, checked for tests.
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    /// <summary>Checks the B+tree invariants (ordering, separators, fill, leaf chain, count); throws
    /// <see cref="InvalidOperationException"/> naming the first one broken. For tests.</summary>
    internal void AssertValid()
    {
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
            for (int i = 0; i < leaf.Count; i++)
            {
                Require(leaf.Keys[i] <= leaf.Lasts[i], "a run ends before it starts");
                Require((!lowerBounded || leaf.Keys[i] >= low) && leaf.Keys[i] < high, "a run start outside its separators");
                Require(i == 0 || leaf.Keys[i] > leaf.Lasts[i - 1], "runs overlap or are out of order");
            }
            Require(previous is null || leaf.Keys[0] > previous.Lasts[previous.Count - 1], "runs overlap across leaves");
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

    private static void Require(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"RunMap invariant broken: {what}");
        }
    }
}
