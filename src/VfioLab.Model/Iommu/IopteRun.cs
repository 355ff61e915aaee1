using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Iommu;

/// <summary>
/// The value of a page-table run in an <see cref="IommuDomain"/>: consecutive leaf IOPTEs of one
/// size and protection mapping physically contiguous memory (a stretch of the driver's page table,
/// e.g. a run of VT-d <c>dma_pte</c> or LPAE block descriptors). Keyed by IOVA byte; the physical
/// address advances with the key, so neighbours merge only when contiguous with the same size and prot.
/// </summary>
/// <remarks>16 bytes, not the 24 of a (phys, size, prot) triple: an IOPTE size is a power of two (a bit of the domain's
/// pgsize_bitmap), kept as its log2. A sparse leaf of the domain's table holds a value per run beside its start and last:
/// 40 bytes an entry became 32, and a live 4 KiB mapping 162.1 → 154.0 B (`--memory-per-mapping`, issue 16;
/// docs/benchmarks.md, 2026-12-07 pair5). The leaf shift of a 4 KiB MAP or UNMAP moves a fifth less, which the pair's
/// time did not show within its noise.</remarks>
internal readonly record struct IopteRun : IRunValue<IopteRun>
{
    private const ulong ProtMask = 0x3F;
    private const int SizeShift = 6;

    /// <summary>A run of IOPTEs of <paramref name="pageSize"/> bytes (a power of two) from <paramref name="phys"/>.</summary>
    public IopteRun(PhysAddr phys, ulong pageSize, IommuProt prot)
    {
        System.Diagnostics.Debug.Assert(System.Numerics.BitOperations.IsPow2(pageSize), "an IOPTE size is a power of two");
        Phys = phys;
        Prot = prot;
        _log2PageSize = (byte)System.Numerics.BitOperations.Log2(pageSize);
    }

    /// <summary>The physical address the run's first byte translates to.</summary>
    public PhysAddr Phys { get; init; }

    /// <summary>The protection of every IOPTE of the run.</summary>
    public IommuProt Prot { get; init; }

    /// <summary>The size of each IOPTE (a power of two).</summary>
    public ulong PageSize => 1UL << _log2PageSize;

    // After the properties' fields, so it packs behind them (sequential layout: 8 + 4 + 1, padded to 16).
    private readonly byte _log2PageSize;

    /// <inheritdoc />
    public static bool Packs => true;

    /// <inheritdoc />
    /// <remarks>Inlined, as is <see cref="Equals(IopteRun)"/>: a one-run insert's join test against its neighbours
    /// (RunMap.TryInsertOne and its hole fill, every 4 KiB MAP next to other mappings) called both out of line, the JIT's
    /// inline budget spent on its large callers: ~18 % of the ladder's <c>RunMap&lt;IopteRun&gt; insert+remove one</c>
    /// (perf, issue 16; docs/benchmarks.md, pair12).</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public IopteRun Advance(ulong offset) => this with { Phys = new PhysAddr(Phys.Value + offset) };

    /// <summary>Whether both runs start at the same physical address with the same IOPTE size and protection (the
    /// record's own field-wise equality, written out so it inlines: see <see cref="Advance"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public bool Equals(IopteRun other) => Phys.Value == other.Phys.Value && Prot == other.Prot && _log2PageSize == other._log2PageSize;

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Phys.Value, Prot, _log2PageSize);

    /// <inheritdoc />
    /// <remarks>One word, as a dma_pte is: a 4 KiB-aligned physical address with log2 of the page size and the
    /// six IOMMU_* bits in its low 12 bits. A run starting mid-page or unknown protection bits do not fit (the leaf
    /// holding such a run keeps the unpacked form).</remarks>
    public static bool TryPack(IopteRun value, out ulong packed)
    {
        ulong prot = (ulong)(uint)value.Prot;
        packed = value.Phys.Value | ((ulong)value._log2PageSize << SizeShift) | prot;
        return (value.Phys.Value & 0xFFF) == 0 && prot <= ProtMask;
    }

    /// <inheritdoc />
    /// <remarks>Inlined: the invariant checker's loop over a packed leaf's words (issue 16) called it once per run.</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static IopteRun Unpack(ulong packed) =>
        new(new PhysAddr(packed & ~0xFFFUL), 1UL << (int)((packed >> SizeShift) & 0x3F), (IommuProt)(packed & ProtMask));
}
