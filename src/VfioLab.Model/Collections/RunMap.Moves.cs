using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace VfioLab.Collections;

// The overlapping moves of a leaf's arrays (Leaf.ShiftRightBy, ShiftLeft).
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    // a[from, from + count) to a[from + by, ...). An overlapping move done in managed code with 32-byte vectors from the
    // top down, each block loaded before anything is stored over it (a store lands at least `by` items above every
    // block still to be read); items that hold references move one by one.
    //
    // Why not Span.CopyTo: .NET hands every overlapping copy of more than 64 bytes to the native memmove through a
    // runtime transition that reads the thread from thread-local storage (__tls_get_addr): three such calls per leaf
    // insert and three per removal were most of a 4 KiB MAP+UNMAP pair's memmove, runtime-stub and __tls_get_addr
    // samples (~7 %, docs/benchmarks.md, 2026-12-07 pair3).
    private static void MoveUp<TItem>(TItem[] a, int from, int count, int by)
        where TItem : struct
    {
        System.Diagnostics.Debug.Assert(from >= 0 && count >= 0 && by > 0 && from + count + by <= a.Length);
        int size = Unsafe.SizeOf<TItem>();
        nuint bytes = (nuint)(count * size);
        if (RuntimeHelpers.IsReferenceOrContainsReferences<TItem>() || bytes < VectorBytes ||
            !Vector256.IsHardwareAccelerated)
        {
            ref TItem r = ref MemoryMarshal.GetArrayDataReference(a);
            for (int i = from + count - 1; i >= from; i--)
            {
                Unsafe.Add(ref r, i + by) = Unsafe.Add(ref r, i);
            }
            return;
        }
        ref byte src = ref Unsafe.As<TItem, byte>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(a), from));
        ref byte dst = ref Unsafe.Add(ref src, size * by);
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

    // a[from, from + count) to a[from - by, ...), as MoveUp from the bottom up, the highest block read first and stored
    // last.
    private static void MoveDown<TItem>(TItem[] a, int from, int count, int by)
        where TItem : struct
    {
        System.Diagnostics.Debug.Assert(from >= by && count >= 0 && by > 0 && from + count <= a.Length);
        int size = Unsafe.SizeOf<TItem>();
        nuint bytes = (nuint)(count * size);
        if (RuntimeHelpers.IsReferenceOrContainsReferences<TItem>() || bytes < VectorBytes ||
            !Vector256.IsHardwareAccelerated)
        {
            ref TItem r = ref MemoryMarshal.GetArrayDataReference(a);
            for (int i = from; i < from + count; i++)
            {
                Unsafe.Add(ref r, i - by) = Unsafe.Add(ref r, i);
            }
            return;
        }
        ref byte src = ref Unsafe.As<TItem, byte>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(a), from));
        ref byte dst = ref Unsafe.Subtract(ref src, size * by);
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
