namespace VfioLab.Collections;

// The tree's nodes: leaves of runs in parallel arrays, inner nodes of separators and children.
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    private abstract class Node
    {
        public ulong[] Keys = [];
        public int Count;
    }

    /// <summary>Up to a node's capacity of runs, by start; the arrays grow to that capacity as needed.</summary>
    private sealed class Leaf : Node
    {
        public ulong[] Lasts;
        public T[] Values;
        public Leaf? Prev;
        public Leaf? Next;

        public Leaf(int capacity)
        {
            Keys = new ulong[capacity];
            Lasts = new ulong[capacity];
            Values = new T[capacity];
        }

        public Run<T> RunAt(int i) => new(Keys[i], Lasts[i], Values[i]);

        public void Reset()
        {
            Count = 0;
            Prev = null;
            Next = null;
        }

        public void Set(int i, ulong start, ulong last, T value)
        {
            Keys[i] = start;
            Lasts[i] = last;
            Values[i] = value;
        }

        public void EnsureCapacity(int needed, int max)
        {
            if (needed <= Keys.Length)
            {
                return;
            }
            int size = Math.Min(max, Math.Max(needed, Keys.Length * 2));
            Array.Resize(ref Keys, size);
            Array.Resize(ref Lasts, size);
            Array.Resize(ref Values, size);
        }

        // Span copies (memmove semantics, overlap-safe) skip Array.Copy's per-call type checks, which
        // cost more than the few hundred bytes a leaf shift moves.
        public void ShiftRight(int from, int count)
        {
            if (count == 0)
            {
                return;
            }
            Keys.AsSpan(from, count).CopyTo(Keys.AsSpan(from + 1));
            Lasts.AsSpan(from, count).CopyTo(Lasts.AsSpan(from + 1));
            Values.AsSpan(from, count).CopyTo(Values.AsSpan(from + 1));
        }

        public void ShiftLeft(int from, int count, int by)
        {
            if (count == 0)
            {
                return;
            }
            Keys.AsSpan(from, count).CopyTo(Keys.AsSpan(from - by));
            Lasts.AsSpan(from, count).CopyTo(Lasts.AsSpan(from - by));
            Values.AsSpan(from, count).CopyTo(Values.AsSpan(from - by));
        }

        public void CopyTo(int from, Leaf target, int at, int count)
        {
            Keys.AsSpan(from, count).CopyTo(target.Keys.AsSpan(at));
            Lasts.AsSpan(from, count).CopyTo(target.Lasts.AsSpan(at));
            Values.AsSpan(from, count).CopyTo(target.Values.AsSpan(at));
        }

        // Values may hold references (a mapping): clear the vacated slots so they can be collected.
        public void ClearTail(int count)
        {
            if (System.Runtime.CompilerServices.RuntimeHelpers.IsReferenceOrContainsReferences<T>())
            {
                Array.Clear(Values, Count, count);
            }
        }
    }

    /// <summary>Children with the smallest start below each (the first is implicit).</summary>
    private sealed class Inner : Node
    {
        public readonly Node[] Children;

        public Inner(int capacity)
        {
            Keys = new ulong[capacity];
            Children = new Node[capacity];
        }

        public void Insert(int pos, ulong key, Node child)
        {
            Keys.AsSpan(pos, Count - pos).CopyTo(Keys.AsSpan(pos + 1));
            Children.AsSpan(pos, Count - pos).CopyTo(Children.AsSpan(pos + 1));
            Keys[pos] = key;
            Children[pos] = child;
            Count++;
        }

        public void RemoveAt(int pos)
        {
            Keys.AsSpan(pos + 1, Count - pos - 1).CopyTo(Keys.AsSpan(pos));
            Children.AsSpan(pos + 1, Count - pos - 1).CopyTo(Children.AsSpan(pos));
            Count--;
            Children[Count] = null!;
        }
    }
}
