using System.Runtime.CompilerServices;
using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>The per-window slots of a frame map that keeps some 4096-frame windows in a direct form: a directory of
/// blocks of <see cref="BlockSlots"/> slots, a block allocated when one of its windows first needs a slot.
/// <see cref="FrameCountMap"/> (counts) and <see cref="FrameFlagMap"/> (bits) each hold one beside their run maps. It
/// also lists which windows are dense (as runs of window numbers), for the walks that cut a frame range into sparse
/// stretches and dense windows.</summary>
/// <remarks>A mutable struct, kept in a (non-readonly) field of its map and used in place: a slot's window is found
/// with two loads and no call, which the per-frame passes of a MAP or UNMAP on shattered memory do once a frame.</remarks>
internal struct WindowDirectory<TSlot>
    where TSlot : struct, IWindowSlot
{
    /// <summary>log2 of the windows per block.</summary>
    public const int BlockShift = 12;

    /// <summary>Windows per block.</summary>
    public const int BlockSlots = 1 << BlockShift;

    private const ulong WindowMask = (1UL << FrameCountMap.WindowShift) - 1;

    private readonly RunMap<Presence> _dense;
    private TSlot[]?[] _blocks;
    private int _denseCount;

    /// <summary>An empty directory.</summary>
    public WindowDirectory()
    {
        _blocks = [];
        _dense = new RunMap<Presence>();
    }

    /// <summary>Windows marked dense.</summary>
    public readonly int DenseCount => _denseCount;

    /// <summary>The dense windows, as runs of window numbers, in order.</summary>
    public readonly RunMap<Presence>.RangeEnumerable DenseRuns => _dense.All();

    /// <summary>Marks <paramref name="window"/> dense (its slot now holds the direct form).</summary>
    public void MarkDense(ulong window)
    {
        _dense.Set(window, window, default);
        _denseCount++;
    }

    /// <summary>Marks <paramref name="window"/> sparse again.</summary>
    public void MarkSparse(ulong window)
    {
        _dense.Remove(window, window);
        _denseCount--;
    }

    /// <summary>Whether any window of frames <c>[first, last]</c> is dense.</summary>
    public readonly bool AnyDense(ulong first, ulong last) =>
        _denseCount != 0 && _dense.Overlaps(first >> FrameCountMap.WindowShift, last >> FrameCountMap.WindowShift);

    /// <summary>The first dense window at or after <paramref name="window"/>, if any.</summary>
    public readonly bool TryNextDense(ulong window, out ulong dense)
    {
        if (_denseCount != 0 && _dense.TryGetAtOrAfter(window, out Run<Presence> d))
        {
            dense = Math.Max(window, d.Start);
            return true;
        }
        dense = 0;
        return false;
    }

    /// <summary>The end of the stretch of frames from <paramref name="cursor"/> (at most <paramref name="last"/>) that
    /// is either sparse throughout or inside one dense window (<paramref name="dense"/>).</summary>
    public readonly ulong NextStretch(ulong cursor, ulong last, out bool dense)
    {
        dense = false;
        if (_denseCount == 0)
        {
            return last;
        }
        ulong window = cursor >> FrameCountMap.WindowShift;
        if (!Unsafe.IsNullRef(ref FindDense(window)))
        {
            dense = true;
            return Math.Min(last, cursor | WindowMask);
        }
        if (TryNextDense(window, out ulong next) && (next << FrameCountMap.WindowShift) - 1 < last)
        {
            return (next << FrameCountMap.WindowShift) - 1;
        }
        return last;
    }

    /// <summary>The blocks, null where none was allocated (index: window / <see cref="BlockSlots"/>).</summary>
    public readonly TSlot[]?[] Blocks => _blocks;

    /// <summary>Window <paramref name="window"/>'s slot, or a null ref where its block was never allocated (a slot
    /// found may still be empty: the caller tests its own fields).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly ref TSlot Find(ulong window)
    {
        ulong b = window >> BlockShift;
        TSlot[]?[] blocks = _blocks;
        if (b < (ulong)blocks.Length && blocks[b] is { } block)
        {
            return ref block[(int)(window & (BlockSlots - 1))];
        }
        return ref Unsafe.NullRef<TSlot>();
    }

    /// <summary>Window <paramref name="window"/>'s slot where the window is dense, else a null ref.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly ref TSlot FindDense(ulong window)
    {
        ref TSlot slot = ref Find(window);
        if (!Unsafe.IsNullRef(ref slot) && slot.IsDense)
        {
            return ref slot;
        }
        return ref Unsafe.NullRef<TSlot>();
    }

    /// <summary>Window <paramref name="window"/>'s slot, allocating its block (and growing the directory) first if
    /// needed.</summary>
    public ref TSlot GetOrAdd(ulong window)
    {
        ulong b = window >> BlockShift;
        if (b >= (ulong)_blocks.Length)
        {
            Array.Resize(ref _blocks, (int)Math.Max(b + 1, (ulong)_blocks.Length * 2));
        }
        TSlot[] block = _blocks[b] ??= new TSlot[BlockSlots];
        return ref block[(int)(window & (BlockSlots - 1))];
    }

    /// <summary>The managed bytes of the directory, its blocks and the dense list, <paramref name="slotBytes"/> a slot (the slots' own
    /// arrays are the map's to count).</summary>
    public readonly long ApproximateBytes(long slotBytes)
    {
        const long ArrayHeader = 24;
        long bytes = _dense.ApproximateBytes() + ArrayHeader + (8L * _blocks.Length);
        foreach (TSlot[]? block in _blocks)
        {
            bytes += block is null ? 0 : ArrayHeader + (slotBytes * block.Length);
        }
        return bytes;
    }
}

/// <summary>A slot of a <see cref="WindowDirectory{TSlot}"/>.</summary>
internal interface IWindowSlot
{
    /// <summary>Whether the slot's window is in the direct (dense) form.</summary>
    bool IsDense { get; }
}
