using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Iommu;

/// <summary>
/// The value of a page-table run in an <see cref="IommuDomain"/>: consecutive leaf IOPTEs of one
/// size and protection mapping physically contiguous memory (a stretch of the driver's page table,
/// e.g. a run of VT-d <c>dma_pte</c> or LPAE block descriptors). Keyed by IOVA byte; the physical
/// address advances with the key, so neighbours merge only when contiguous with the same size and prot.
/// </summary>
internal readonly record struct IopteRun(PhysAddr Phys, ulong PageSize, IommuProt Prot) : IRunValue<IopteRun>
{
    private const ulong ProtMask = 0x3F;
    private const int SizeShift = 6;

    /// <inheritdoc />
    public static bool Packs => true;

    /// <inheritdoc />
    public IopteRun Advance(ulong offset) => this with { Phys = new PhysAddr(Phys.Value + offset) };

    /// <inheritdoc />
    /// <remarks>One word, as a dma_pte is: a 4 KiB-aligned physical address with log2 of the page size and the
    /// six IOMMU_* bits in its low 12 bits. A run starting mid-page, a page size that is not a power of two or
    /// unknown protection bits do not fit (the leaf holding such a run keeps the unpacked form).</remarks>
    public static bool TryPack(IopteRun value, out ulong packed)
    {
        ulong size = value.PageSize;
        ulong prot = (ulong)(uint)value.Prot;
        packed = value.Phys.Value | ((ulong)System.Numerics.BitOperations.Log2(size) << SizeShift) | prot;
        return (value.Phys.Value & 0xFFF) == 0 && System.Numerics.BitOperations.IsPow2(size) && prot <= ProtMask;
    }

    /// <inheritdoc />
    /// <remarks>Inlined: the invariant checker's loop over a packed leaf's words (issue 16) called it once per run.</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static IopteRun Unpack(ulong packed) =>
        new(new PhysAddr(packed & ~0xFFFUL), 1UL << (int)((packed >> SizeShift) & 0x3F), (IommuProt)(packed & ProtMask));
}
