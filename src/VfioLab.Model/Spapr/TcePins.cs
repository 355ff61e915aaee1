using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Spapr;

/// <summary>
/// The page pins v1 TCEs hold: each TCE pins the one system page its address lies in
/// (<c>tce_iommu_use_page</c>, pin_user_pages_fast of one page), so a run of TCEs smaller than PAGE_SIZE
/// pins each page once per TCE inside it. Counted by frame runs of equal multiplicity (a head page, whole
/// pages, a tail page), never per TCE. v1 windows use 4 KiB TCEs, never larger than PAGE_SIZE.
/// </summary>
internal static class TcePins
{
    /// <summary>Calls <paramref name="visit"/> with (first frame, frames, pins per frame) for the pages
    /// <paramref name="count"/> TCEs of <c>1 &lt;&lt; tceShift</c> bytes from host address <paramref name="hpa"/> pin.</summary>
    public static void ForEachFrame(ulong hpa, ulong count, int tceShift, int pageShift, Action<Pfn, ulong, ulong> visit)
    {
        System.Diagnostics.Debug.Assert(tceShift <= pageShift, "v1 TCEs are never larger than PAGE_SIZE");
        if (count == 0)
        {
            return;
        }
        ulong perPage = 1UL << (pageShift - tceShift);
        ulong firstFrame = hpa >> pageShift;
        ulong used = (hpa & ((1UL << pageShift) - 1)) >> tceShift;
        ulong head = Math.Min(count, perPage - used);
        visit(new Pfn(firstFrame), 1, head);
        ulong left = count - head;
        ulong whole = left / perPage;
        if (whole > 0)
        {
            visit(new Pfn(firstFrame + 1), whole, perPage);
        }
        ulong tail = left - (whole * perPage);
        if (tail > 0)
        {
            visit(new Pfn(firstFrame + 1 + whole), 1, tail);
        }
    }

    /// <summary>Unpins what <paramref name="count"/> v1 TCEs from <paramref name="hpa"/> pinned (dirty when
    /// the device could write them). Never fails.</summary>
    public static void Unpin(Machine machine, ulong hpa, ulong count, int tceShift, bool dirty) =>
        ForEachFrame(hpa, count, tceShift, machine.PageShift, (first, frames, times) =>
        {
            for (ulong i = 0; i < times; i++)
            {
                Gup.UnpinUserPages(machine, new PfnRun(first, frames), dirty);
            }
        });

    /// <summary>Adds the pins beyond the first that <paramref name="count"/> TCEs need on frames GUP already
    /// pinned once each.</summary>
    public static void PinExtra(Machine machine, ulong hpa, ulong count, int tceShift) =>
        ForEachFrame(hpa, count, tceShift, machine.PageShift, (first, frames, times) =>
        {
            for (ulong i = 1; i < times; i++)
            {
                machine.Memory.Pin(first, frames);
            }
        });
}
