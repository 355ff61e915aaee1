using System.Numerics;
using System.Text;

namespace VfioLab.Iommu;

/// <summary>
/// Pure helpers over an IOMMU page-size bitmap (the kernel's <c>pgsize_bitmap</c>: bit n set means
/// a 2^n-byte IOPTE is supported), as used by <c>iommu_pgsize()</c> in <c>drivers/iommu/iommu.c</c>
/// and by type1's bitmap folding (<c>vfio_update_pgsize_bitmap</c>, spec §2.6).
/// </summary>
internal static class PageSizeBitmap
{
    /// <summary>4 KiB.</summary>
    public const ulong Size4K = 1UL << 12;

    /// <summary>64 KiB.</summary>
    public const ulong Size64K = 1UL << 16;

    /// <summary>2 MiB.</summary>
    public const ulong Size2M = 1UL << 21;

    /// <summary>16 MiB.</summary>
    public const ulong Size16M = 1UL << 24;

    /// <summary>512 MiB.</summary>
    public const ulong Size512M = 1UL << 29;

    /// <summary>1 GiB.</summary>
    public const ulong Size1G = 1UL << 30;

    /// <summary>The smallest supported size, or 0 for an empty bitmap.</summary>
    public static ulong MinPageSize(ulong bitmap) => bitmap == 0 ? 0 : 1UL << BitOperations.TrailingZeroCount(bitmap);

    /// <summary>The largest supported size, or 0 for an empty bitmap.</summary>
    public static ulong MaxPageSize(ulong bitmap) => bitmap == 0 ? 0 : 1UL << (63 - BitOperations.LeadingZeroCount(bitmap));

    /// <summary>Whether <paramref name="size"/> is exactly one supported page size.</summary>
    public static bool Supports(ulong bitmap, ulong size) => size != 0 && BitOperations.IsPow2(size) && (bitmap & size) != 0;

    /// <summary>
    /// The largest page size p in <paramref name="bitmap"/> with p &lt;= <paramref name="remaining"/>
    /// and both <paramref name="iova"/> and <paramref name="phys"/> p-aligned (iommu_pgsize(), spec §3.4);
    /// 0 when none fits (the caller then has a misalignment to the minimum page size).
    /// </summary>
    public static ulong LargestFitting(ulong bitmap, ulong iova, ulong phys, ulong remaining)
    {
        if (remaining == 0)
        {
            return 0;
        }
        // Sizes up to the highest bit of `remaining` are candidates ...
        ulong candidates = bitmap & (MaskUpTo(63 - BitOperations.LeadingZeroCount(remaining)));
        // ... and up to the lowest set bit of iova|phys (alignment); 0 is aligned to everything.
        ulong addr = iova | phys;
        if (addr != 0)
        {
            candidates &= MaskUpTo(BitOperations.TrailingZeroCount(addr));
        }
        return MaxPageSize(candidates);
    }

    /// <summary>
    /// Type1's folding of sizes below the host PAGE_SIZE (spec §2.6): when the bitmap has any bit
    /// below <paramref name="hostPageSize"/>, those bits are cleared and the PAGE_SIZE bit is set, so a
    /// user can never map less than a host page (e.g. a 64 KiB-page host on a 4 KiB IOMMU exposes
    /// 64 KiB, and the IOMMU driver maps each 64 KiB chunk as 16 native 4 KiB IOPTEs).
    /// </summary>
    public static ulong FoldSubPageSizes(ulong bitmap, ulong hostPageSize)
    {
        System.Diagnostics.Debug.Assert(BitOperations.IsPow2(hostPageSize));
        ulong below = hostPageSize - 1;
        if ((bitmap & below) == 0)
        {
            return bitmap;
        }
        return (bitmap & ~below) | hostPageSize;
    }

    /// <summary>Builds a bitmap from individual sizes; false when one is not a power of two.</summary>
    public static bool TryFromSizes(IEnumerable<ulong> sizes, out ulong bitmap)
    {
        bitmap = 0;
        foreach (ulong s in sizes)
        {
            if (!BitOperations.IsPow2(s))
            {
                bitmap = 0;
                return false;
            }
            bitmap |= s;
        }
        return true;
    }

    /// <summary>The set sizes, smallest first.</summary>
    public static IEnumerable<ulong> Sizes(ulong bitmap)
    {
        while (bitmap != 0)
        {
            ulong low = bitmap & (~bitmap + 1);
            yield return low;
            bitmap &= ~low;
        }
    }

    /// <summary>Human form for messages and reports: <c>4K|2M|1G</c>.</summary>
    public static string Format(ulong bitmap)
    {
        if (bitmap == 0)
        {
            return "0";
        }
        var sb = new StringBuilder();
        foreach (ulong s in Sizes(bitmap))
        {
            if (sb.Length > 0)
            {
                sb.Append('|');
            }
            sb.Append(FormatSize(s));
        }
        return sb.ToString();
    }

    /// <summary>One power-of-two size with a binary unit: <c>4K</c>, <c>2M</c>, <c>1G</c>, <c>512</c>.</summary>
    public static string FormatSize(ulong size)
    {
        string[] units = ["", "K", "M", "G", "T", "P", "E"];
        int u = 0;
        while (size >= 1024 && size % 1024 == 0 && u < units.Length - 1)
        {
            size /= 1024;
            u++;
        }
        return $"{size}{units[u]}";
    }

    // Bits 0..n inclusive.
    private static ulong MaskUpTo(int n) => n >= 63 ? ulong.MaxValue : (1UL << (n + 1)) - 1;
}
