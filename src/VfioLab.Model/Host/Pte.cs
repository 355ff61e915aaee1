using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Host;

/// <summary>A present page-table entry stored over a run of virtual pages (pte_t: pfn and the write
/// bit); linear, so the page <c>i</c> pages later maps pfn <c>Pfn + i</c>. A <see cref="ZeroPage"/> entry is
/// constant instead: every page of its run maps the one shared zero frame read-only (do_anonymous_page's
/// zero-pfn PTE), so an untouched stretch of any length read by the CPU stays one run.</summary>
internal readonly record struct Pte(Pfn Pfn, bool Writable, bool ZeroPage = false) : IRunValue<Pte>
{
    /// <summary>A read-only mapping of the shared zero frame <paramref name="zeroPfn"/>.</summary>
    public static Pte Zero(Pfn zeroPfn) => new(zeroPfn, false, true);

    /// <inheritdoc />
    public static bool Packs => true;

    /// <inheritdoc />
    public Pte Advance(ulong offset) => ZeroPage ? this : new(Pfn.Plus(offset), Writable);

    /// <inheritdoc />
    /// <remarks>One word, as pte_t is: the pfn above the write and zero-page bits; pfns of 2^62 and more do not fit.</remarks>
    public static bool TryPack(Pte value, out ulong packed)
    {
        packed = (value.Pfn.Value << 2) | (value.Writable ? 2UL : 0) | (value.ZeroPage ? 1UL : 0);
        return value.Pfn.Value >> 62 == 0;
    }

    /// <inheritdoc />
    public static Pte Unpack(ulong packed) => new(new Pfn(packed >> 2), (packed & 2) != 0, (packed & 1) != 0);
}
