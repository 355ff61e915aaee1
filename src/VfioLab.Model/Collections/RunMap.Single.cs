using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace VfioLab.Collections;

// One run in and one run out of the middle of a sparse leaf with the leaf's arrays shifted in managed code: the lane of
// a 4 KiB MAP_DMA and UNMAP_DMA in an IOMMU table of many runs (issue 16's pair).
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    /// <summary><see cref="TryInsert"/> of a run that joins neither neighbour into a sparse leaf with room (the IOPTE
    /// run of a 4 KiB map between other mappings), with the leaf's entries moved up without
    /// <see cref="Span{T}.CopyTo"/>.
    /// Anything else (an empty map, a packed or full leaf, a run that continues a neighbour) is
    /// <see cref="TryInsert"/> itself. Ends exactly as <see cref="TryInsert"/>: the same runs, leaves, packing and
    /// version.</summary>
    /// <remarks>Why: a shift of a leaf's arrays is an overlapping copy, and .NET hands every overlapping copy of more
    /// than 64 bytes to the native memmove through a runtime transition that reads the thread from thread-local
    /// storage (<c>__tls_get_addr</c>): three such calls per insert and three per removal, most of the pair's memmove,
    /// runtime-stub and <c>__tls_get_addr</c> samples (~7 %, docs/benchmarks.md, 2026-12-07 pair3).</remarks>
    public bool TryInsertOne(ulong start, ulong last, T value)
    {
        if (_root is null)
        {
            return InsertChecked(start, last, value, check: true);
        }
        Leaf at = Descend(start, record: true);
        int pos = Rank(at, start);
        if (at.IsDense || at.Count >= _capacity)
        {
            return InsertChecked(start, last, value, check: true);
        }
        bool hasPrev = FindPrevious(at, pos, out Leaf? prevLeaf, out int prev);
        bool hasNext = Successor(at, pos, out Leaf? nextLeaf, out int next);
        if ((hasPrev && prevLeaf!.LastAt(prev) >= start) || (hasNext && nextLeaf!.StartAt(next) <= last))
        {
            return false;
        }
        bool joinPrev = hasPrev && start != 0 && prevLeaf!.LastAt(prev) == start - 1 &&
            prevLeaf.ValueAt(prev).Advance(start - prevLeaf.StartAt(prev)).Equals(value);
        bool joinNext = hasNext && last != ulong.MaxValue && nextLeaf!.StartAt(next) == last + 1 &&
            value.Advance(last - start + 1).Equals(nextLeaf.ValueAt(next));
        if (joinPrev || joinNext)
        {
            // It continues a neighbour (they merge): the general insert does that.
            return InsertChecked(start, last, value, check: true);
        }
        _version++;
        at.EnsureCapacity(at.Count + 1, _capacity);
        int tail = at.Count - pos;
        MoveUp(at.Keys, pos, tail);
        MoveUp(at.Lasts, pos, tail);
        MoveUp(at.Values, pos, tail);
        at.Set(pos, start, last, value);
        at.Count++;
        Count++;
        if (PackedForm && at.Count == _capacity)
        {
            TryPack(at);
        }
        return true;
    }

    /// <summary><see cref="TryRemoveExact"/> with the leaf's entries moved down without <see cref="Span{T}.CopyTo"/>
    /// when the leaf stays sparse and at least half full (no merge follows): the IOPTE run of a 4 KiB unmap. Otherwise
    /// the removal is <see cref="TryRemoveExact"/>'s own. Ends exactly as <see cref="TryRemoveExact"/>.</summary>
    public bool TryRemoveExactOne(ulong start, ulong last, out T value)
    {
        if (!TryFindExact(start, last, out Leaf? at, out int pos, out value))
        {
            return false;
        }
        int left = at.Count - 1;
        if (at.IsDense || left == 0 || (_height > 0 && left < _capacity / 2))
        {
            DeleteRange(at, pos, 1);
            return true;
        }
        int tail = left - pos;
        MoveDown(at.Keys, pos + 1, tail);
        MoveDown(at.Lasts, pos + 1, tail);
        MoveDown(at.Values, pos + 1, tail);
        at.Count = left;
        at.ClearTail(1);
        Count--;
        _version++;
        return true;
    }

    // a[from, from + count) to a[from + 1, ...). An overlapping move done in managed code with 32-byte vectors from the
    // top down, each block loaded before anything is stored over it; items that hold references move one by one.
    private static void MoveUp<TItem>(TItem[] a, int from, int count)
        where TItem : struct
    {
        System.Diagnostics.Debug.Assert(from >= 0 && count >= 0 && from + count < a.Length);
        int size = Unsafe.SizeOf<TItem>();
        nuint bytes = (nuint)(count * size);
        if (RuntimeHelpers.IsReferenceOrContainsReferences<TItem>() || bytes < VectorBytes ||
            !Vector256.IsHardwareAccelerated)
        {
            ref TItem r = ref MemoryMarshal.GetArrayDataReference(a);
            for (int i = from + count - 1; i >= from; i--)
            {
                Unsafe.Add(ref r, i + 1) = Unsafe.Add(ref r, i);
            }
            return;
        }
        ref byte src = ref Unsafe.As<TItem, byte>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(a), from));
        ref byte dst = ref Unsafe.Add(ref src, size);
        // Whole blocks from the top down to `at` (32 <= at < 64); the bottom [0, at) is two blocks that overlap each
        // other, read before anything is stored and stored last.
        nuint at = bytes - ((bytes - VectorBytes) / VectorBytes * VectorBytes);
        Vector256<byte> lowest = Unsafe.ReadUnaligned<Vector256<byte>>(ref src);
        Vector256<byte> second = Unsafe.ReadUnaligned<Vector256<byte>>(ref Unsafe.Add(ref src, at - VectorBytes));
        for (nuint k = bytes; k > at;)
        {
            k -= VectorBytes;
            Vector256<byte> block = Unsafe.ReadUnaligned<Vector256<byte>>(ref Unsafe.Add(ref src, k));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, k), block);
        }
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, at - VectorBytes), second);
        Unsafe.WriteUnaligned(ref dst, lowest);
    }

    // a[from, from + count) to a[from - 1, ...), as MoveUp from the bottom up, the highest block read first and stored
    // last.
    private static void MoveDown<TItem>(TItem[] a, int from, int count)
        where TItem : struct
    {
        System.Diagnostics.Debug.Assert(from >= 1 && count >= 0 && from + count <= a.Length);
        int size = Unsafe.SizeOf<TItem>();
        nuint bytes = (nuint)(count * size);
        if (RuntimeHelpers.IsReferenceOrContainsReferences<TItem>() || bytes < VectorBytes ||
            !Vector256.IsHardwareAccelerated)
        {
            ref TItem r = ref MemoryMarshal.GetArrayDataReference(a);
            for (int i = from; i < from + count; i++)
            {
                Unsafe.Add(ref r, i - 1) = Unsafe.Add(ref r, i);
            }
            return;
        }
        ref byte src = ref Unsafe.As<TItem, byte>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(a), from));
        ref byte dst = ref Unsafe.Subtract(ref src, size);
        // Whole blocks from the bottom up to `end` (32 <= bytes - end < 64), then the top [end, bytes) as two blocks that
        // overlap each other, read before anything is stored.
        nuint end = (bytes - VectorBytes) / VectorBytes * VectorBytes;
        Vector256<byte> second = Unsafe.ReadUnaligned<Vector256<byte>>(ref Unsafe.Add(ref src, end));
        Vector256<byte> highest = Unsafe.ReadUnaligned<Vector256<byte>>(ref Unsafe.Add(ref src, bytes - VectorBytes));
        for (nuint k = 0; k < end; k += VectorBytes)
        {
            Vector256<byte> block = Unsafe.ReadUnaligned<Vector256<byte>>(ref Unsafe.Add(ref src, k));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, k), block);
        }
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, end), second);
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, bytes - VectorBytes), highest);
    }

    private const nuint VectorBytes = 32;
}
