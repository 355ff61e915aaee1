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

    /// <summary>
    /// Up to a node's capacity of runs, by start, in one of two forms. Sparse: parallel arrays of starts,
    /// lasts and values, grown to the capacity as needed. Dense (<see cref="Packed"/> not null): the runs
    /// are back to back and all <see cref="Unit"/> keys long, so run <c>i</c> is
    /// <c>[Base + i·Unit, Base + (i + 1)·Unit - 1]</c> and its value is one packed word; the sparse arrays
    /// are then empty. <see cref="Base"/> and <see cref="Unit"/> head the packed array rather than being
    /// fields, so the sparse leaves every map is full of pay one reference for the form, not three words
    /// (measured: 24 more bytes per leaf was +1.5 B per live 4 KiB DMA mapping). Every accessor below answers for both forms; mutations other than those the dense
    /// form keeps (append, prepend, value replacement, trimming whole runs at either end) open the leaf
    /// into the sparse form first (<see cref="RunMap{T}.Open"/>).
    /// </summary>
    private sealed class Leaf : Node
    {
        public ulong[] Lasts;
        public T[] Values;
        public const int Header = 2;

        public ulong[]? Packed;
        public Leaf? Prev;
        public Leaf? Next;

        public Leaf(int capacity)
        {
            Keys = new ulong[capacity];
            Lasts = new ulong[capacity];
            Values = new T[capacity];
        }

        public Leaf(ulong[] keys, ulong[] lasts, T[] values)
        {
            Keys = keys;
            Lasts = lasts;
            Values = values;
        }

        public bool IsDense => PackedForm && Packed is not null;

        public ulong Base
        {
            get => Packed![0];
            set => Packed![0] = value;
        }

        public ulong Unit
        {
            get => Packed![1];
            set => Packed![1] = value;
        }

        // Inlined, the three of them: inside the one-run and edge lanes' large inlined callers the JIT, its inline budget
        // spent, called StartAt and ValueAt out of line: ~24 % of the ladder's RunMap<IopteRun> insert+remove one (perf,
        // issue 16; docs/benchmarks.md, pair12).
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public ulong StartAt(int i) => !IsDense ? Keys[i] : Base + ((ulong)i * Unit);

        // Start plus (Unit - 1) rather than the next start minus one: a run may end at 2^64-1.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public ulong LastAt(int i) => !IsDense ? Lasts[i] : Base + ((ulong)i * Unit) + (Unit - 1);

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public T ValueAt(int i) => !IsDense ? Values[i] : T.Unpack(Packed![i + Header]);

        public ulong FirstStart => StartAt(0);

        public ulong FinalLast => LastAt(Count - 1);

        public Run<T> RunAt(int i) => new(StartAt(i), LastAt(i), ValueAt(i));

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

        // Overlapping moves in managed code (MoveUp/MoveDown), not Span.CopyTo or Array.Copy (the latter's per-call type
        // checks cost more than the few hundred bytes a leaf shift moves).
        public void ShiftRight(int from, int count) => ShiftRightBy(from, count, 1);

        public void ShiftRightBy(int from, int count, int by)
        {
            if (count == 0)
            {
                return;
            }
            MoveUp(Keys, from, count, by);
            MoveUp(Lasts, from, count, by);
            MoveUp(Values, from, count, by);
        }

        public void ShiftLeft(int from, int count, int by)
        {
            if (count == 0)
            {
                return;
            }
            MoveDown(Keys, from, count, by);
            MoveDown(Lasts, from, count, by);
            MoveDown(Values, from, count, by);
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
