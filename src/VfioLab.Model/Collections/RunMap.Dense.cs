namespace VfioLab.Collections;

// The packed (dense) leaf form: when runs degenerate to equal lengths laid back to back (a page table or an
// IOMMU table over memory shattered into one-page runs of frames, one run per page), a leaf stores its first
// key, the run length and one packed word per run, about what the kernel stores (one pte_t or dma_pte per page).
//
// Why this form and these rules (measured with `--shattered-memory`, docs/benchmarks.md, 2026-12-07):
// - A sparse run costs a start, a last and a value (8 + 8 + 16 for a Pte, + 24 for an IopteRun), plus the
//   slack of partly filled arrays; packed it costs 8. On 1-page runs the page table and the IOPTE map are
//   most of the live memory, and both are filled in key order, so their leaves are full and back to back.
// - Only equal-length back-to-back runs pack: a run's bounds then follow from its index by one multiply, and
//   the leaf's rank of a key by one division, so lookups stay O(1) inside a leaf and every tree algorithm
//   keeps addressing runs by index. A leaf with holes or mixed lengths (contiguous or huge-page memory, where
//   one run spans a whole mapping) stays sparse and pays nothing: it is never packed, and a map of values
//   that do not pack (IRunValue.Packs false) never even checks.
// - A leaf is packed when it fills (see InsertAt): a sequential fill packs each leaf exactly once, as it is
//   left behind, with no per-insert cost; a random fill tries once per fill and fails at the first mismatch.
// - The operations that keep a packed leaf packed are the ones the shattered workloads do: append and
//   prepend of one more run, a value replaced in place, whole runs removed at either end (UNMAP in IOVA
//   order). Anything else opens the leaf back into the sparse form first, so correctness rests on the
//   sparse code alone, and the leaf is packed again when it next fills.
// - The sparse arrays a packed leaf gives up are kept (one set per map) for the next new or opened leaf,
//   so a sequential fill allocates no sparse arrays beyond the first.
internal sealed partial class RunMap<T>
    where T : struct, IRunValue<T>
{
    // Whether T packs, read once into a static readonly field, which optimized code treats as a constant: for
    // values that never pack every test of the form folds away and the sparse leaf's code is what it was
    // before the packed form existed.
    private static readonly bool PackedForm = T.Packs;

    private ulong[]? _spareKeys;
    private ulong[]? _spareLasts;
    private T[]? _spareValues;
    private ulong[]? _sparePacked;

    // A leaf for a split: the spare sparse arrays if a packed leaf left some, else new ones.
    private Leaf NewLeaf()
    {
        if (_spareKeys is null)
        {
            return new Leaf(_capacity);
        }
        var leaf = new Leaf(_spareKeys, _spareLasts!, _spareValues!);
        _spareKeys = null;
        _spareLasts = null;
        _spareValues = null;
        return leaf;
    }

    // Turns a packed leaf back into the sparse form (no-op for a sparse leaf); its content is unchanged. Inlined
    // so the sparse leaf's updates pay a field test, not a call: with a plain call and T.Packs read in place,
    // `--runmap-loop` measured the set/remove pair ~10 ns slower than before the packed form; with this and
    // PackedForm, equal (docs/benchmarks.md, 2026-12-07).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void Open(Leaf leaf)
    {
        if (PackedForm && leaf.Packed is not null)
        {
            Unpack(leaf);
        }
    }

    private void Unpack(Leaf leaf)
    {
        ulong[] packed = leaf.Packed!;
        ulong[] keys;
        ulong[] lasts;
        T[] values;
        if (_spareKeys is not null)
        {
            keys = _spareKeys;
            lasts = _spareLasts!;
            values = _spareValues!;
            _spareKeys = null;
            _spareLasts = null;
            _spareValues = null;
        }
        else
        {
            keys = new ulong[_capacity];
            lasts = new ulong[_capacity];
            values = new T[_capacity];
        }
        ulong start = leaf.Base;
        ulong span = leaf.Unit - 1;
        for (int i = 0; i < leaf.Count; i++)
        {
            keys[i] = start;
            lasts[i] = start + span;
            values[i] = T.Unpack(packed[i + Leaf.Header]);
            start += leaf.Unit;
        }
        leaf.Keys = keys;
        leaf.Lasts = lasts;
        leaf.Values = values;
        leaf.Packed = null;
        _sparePacked ??= packed;
    }

    // Packs a sparse leaf whose runs are all Unit keys long and back to back and whose values all pack.
    private void TryPack(Leaf leaf)
    {
        if (!PackedForm || leaf.Packed is not null || leaf.Count < 2)
        {
            return;
        }
        ulong[] keys = leaf.Keys;
        ulong[] lasts = leaf.Lasts;
        T[] values = leaf.Values;
        ulong unit = lasts[0] - keys[0] + 1;
        if (unit == 0 || keys[1] - keys[0] != unit)
        {
            // A run over the whole key space, or a hole or a longer run at once: the usual sparse leaf.
            return;
        }
        ulong[] packed = _sparePacked ?? new ulong[_capacity + Leaf.Header];
        for (int i = 0; i < leaf.Count; i++)
        {
            if ((i > 0 && keys[i] - keys[i - 1] != unit) || lasts[i] - keys[i] != unit - 1 ||
                !T.TryPack(values[i], out packed[i + Leaf.Header]))
            {
                _sparePacked = packed;
                return;
            }
        }
        _sparePacked = null;
        leaf.Packed = packed;
        leaf.Base = keys[0];
        leaf.Unit = unit;
        leaf.Keys = [];
        leaf.Lasts = [];
        leaf.Values = [];
        if (keys.Length == _capacity && _spareKeys is null)
        {
            if (System.Runtime.CompilerServices.RuntimeHelpers.IsReferenceOrContainsReferences<T>())
            {
                Array.Clear(values);
            }
            _spareKeys = keys;
            _spareLasts = lasts;
            _spareValues = values;
        }
    }

    // One more run at either end of a packed leaf that is not full, if it is one Unit long, back to back with
    // the leaf's runs and packs; false (nothing changed) otherwise.
    private static bool TryInsertDense(Leaf leaf, int pos, ulong start, ulong last, T value)
    {
        if (last - start != leaf.Unit - 1 || !T.TryPack(value, out ulong word))
        {
            return false;
        }
        ulong[] packed = leaf.Packed!;
        if (pos == leaf.Count && leaf.FinalLast != ulong.MaxValue && start == leaf.FinalLast + 1)
        {
            packed[leaf.Count + Leaf.Header] = word;
        }
        else if (pos == 0 && last != ulong.MaxValue && last + 1 == leaf.Base)
        {
            packed.AsSpan(Leaf.Header, leaf.Count).CopyTo(packed.AsSpan(Leaf.Header + 1));
            packed[Leaf.Header] = word;
            leaf.Base = start;
        }
        else
        {
            return false;
        }
        leaf.Count++;
        return true;
    }

    // Whether value over [start, last] (the bounds of run i) would continue the run before or after it.
    private static bool JoinsNeighbour(Leaf leaf, int i, ulong start, ulong last, T value)
    {
        if (start != 0 && FindPrevious(leaf, i, out Leaf? pl, out int p) && pl.LastAt(p) == start - 1 &&
            pl.ValueAt(p).Advance(start - pl.StartAt(p)).Equals(value))
        {
            return true;
        }
        return last != ulong.MaxValue && Successor(leaf, i + 1, out Leaf? nl, out int n) && nl.StartAt(n) == last + 1 &&
            value.Advance(last - start + 1).Equals(nl.ValueAt(n));
    }

    // Gives run i a new value in place (its bounds and its neighbours unchanged).
    private void ReplaceValue(Leaf leaf, int i, T value)
    {
        _version++;
        if (PackedForm && leaf.Packed is { } packed)
        {
            if (T.TryPack(value, out ulong word))
            {
                packed[i + Leaf.Header] = word;
                return;
            }
            Open(leaf);
        }
        leaf.Values[i] = value;
    }
}
