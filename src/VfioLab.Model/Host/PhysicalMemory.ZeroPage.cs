using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Host;

// The shared zero page (ZERO_PAGE, empty_zero_page): one frame of zeros that read faults of untouched
// private anonymous memory map read-only. The kernel's sits in its image and is PageReserved; the model takes
// the lowest free frame above pfn 0 the first time a read fault needs it (so a host that never reads untouched memory
// allocates exactly as before) and keeps it for the machine's life, with one reference of its own and no
// contents. Page-table entries that map it hold no reference and it is never pinned: since c8070b787519 ("mm:
// Don't pin ZERO_PAGE in pin_user_pages()", v6.5) GUP leaves it unpinned, and before that type1 unpinned it at
// once (873aefb376bb, "vfio/type1: Unpin zero pages", v6.0), so no pin count on it is ever visible. It is never
// written: every mapping of it, CPU or IOMMU, is read-only.
internal sealed partial class PhysicalMemory
{
    // The zero frame's pfn, ulong.MaxValue until a read fault first needs it; written once under _gate, read
    // without it (type1's reserved test asks on every chunk).
    private ulong _zeroPfn = ulong.MaxValue;

    /// <summary>The shared zero frame, once something mapped it.</summary>
    public Pfn? ZeroFrame
    {
        get
        {
            ulong z = Volatile.Read(ref _zeroPfn);
            return z == ulong.MaxValue ? null : new Pfn(z);
        }
    }

    /// <summary>Whether <paramref name="pfn"/> is the shared zero frame.</summary>
    public bool IsZeroFrame(Pfn pfn) => pfn.Value == Volatile.Read(ref _zeroPfn);

    /// <summary>The shared zero frame, taking the lowest free frame for it on first use. False (the fault is
    /// then out of memory) only when RAM is full before anything needed it.</summary>
    public bool TryGetZeroFrame(out Pfn zero)
    {
        ulong z = Volatile.Read(ref _zeroPfn);
        if (z != ulong.MaxValue)
        {
            zero = new Pfn(z);
            return true;
        }
        using (_gate.EnterScope())
        {
            if (_zeroPfn == ulong.MaxValue)
            {
                // Not pfn 0 while another frame is free: physical address 0 is what iommu_iova_to_phys answers for a
                // hole, and the kernel's zero page is never there.
                if (!_free.TryGetAtOrAfter(1, out Run<FrameCount> lowest) && !_free.TryGetAtOrAfter(0, out lowest))
                {
                    zero = default;
                    return false;
                }
                TakeLocked(lowest.Start, 1);
                Volatile.Write(ref _zeroPfn, lowest.Start);
            }
            zero = new Pfn(_zeroPfn);
            return true;
        }
    }
}
