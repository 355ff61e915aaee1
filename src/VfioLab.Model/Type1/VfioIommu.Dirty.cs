using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Vfio;

namespace VfioLab.Type1;

// VFIO_IOMMU_DIRTY_PAGES (spec §1.7) and the dirty bitmaps of mappings (§3.11).
internal sealed partial class VfioIommu
{
    /// <summary>DIRTY_BITMAP_PAGES_MAX: INT_MAX bits per mapping.</summary>
    private const ulong DirtyBitmapPagesMax = int.MaxValue;

    private Errno DirtyPages(VfioCallContext context, ref IoctlArgument argument)
    {
        if (!V2)
        {
            return Errno.EACCES;
        }
        Span<byte> raw = stackalloc byte[VfioIommuType1DirtyBitmap.SizeOf];
        if (!argument.TryCopyFrom(0, raw))
        {
            return Errno.EFAULT;
        }
        VfioIommuType1DirtyBitmap.TryRead(raw, out VfioIommuType1DirtyBitmap dirty);
        const DirtyPagesFlags known = DirtyPagesFlags.Start | DirtyPagesFlags.Stop | DirtyPagesFlags.GetBitmap;
        if (dirty.Argsz < VfioIommuType1DirtyBitmap.MinSize || (dirty.Flags & ~known) != 0)
        {
            return Errno.EINVAL;
        }
        switch (dirty.Flags)
        {
            case DirtyPagesFlags.Start:
                return StartDirtyTracking(context.Process);
            case DirtyPagesFlags.Stop:
                StopDirtyTracking(context.Process);
                return Errno.None;
            case DirtyPagesFlags.GetBitmap:
                break;
            default:
                return Errno.EINVAL;
        }
        if (dirty.Argsz - VfioIommuType1DirtyBitmap.MinSize < VfioIommuType1DirtyBitmapGet.SizeOf)
        {
            return Errno.EINVAL;
        }
        Span<byte> getRaw = stackalloc byte[VfioIommuType1DirtyBitmapGet.SizeOf];
        if (!argument.TryCopyFrom(VfioIommuType1DirtyBitmap.Offsets.Data, getRaw))
        {
            return Errno.EFAULT;
        }
        VfioIommuType1DirtyBitmapGet.TryRead(getRaw, out VfioIommuType1DirtyBitmapGet range);
        return GetDirtyBitmap(context.Memory, range.Iova, range.Size, range.Bitmap);
    }

    /// <summary>DIRTY_PAGES START: allocates every mapping's bitmap (EINVAL past INT_MAX pages, ENOMEM;
    /// on failure none stay allocated), seeded with its external pins. Idempotent.</summary>
    public Errno StartDirtyTracking(Process? caller)
    {
        using (_lock.EnterScope())
        {
            if (_dirtyTracking)
            {
                return Errno.None;
            }
            ulong pgsize = _domains.MinPageSizeLocked;
            List<VfioDma> dmas = _tree.AllLocked();
            for (int i = 0; i < dmas.Count; i++)
            {
                Errno e = AllocateBitmapLocked(dmas[i], pgsize);
                if (e != Errno.None)
                {
                    for (int j = 0; j < i; j++)
                    {
                        dmas[j].Bitmap = null;
                    }
                    return e;
                }
            }
            _dirtyTracking = true;
            if (Trace.Enabled)
            {
                Emit("dirty_start", caller, TraceLog.F("pgsize", pgsize), TraceLog.F("mappings", dmas.Count));
            }
            return Errno.None;
        }
    }

    /// <summary>DIRTY_PAGES STOP: discards every bitmap.</summary>
    public void StopDirtyTracking(Process? caller)
    {
        using (_lock.EnterScope())
        {
            if (!_dirtyTracking)
            {
                return;
            }
            _dirtyTracking = false;
            foreach (VfioDma dma in _tree.AllLocked())
            {
                dma.Bitmap = null;
                dma.BitmapPageSize = 0;
            }
            if (Trace.Enabled)
            {
                Emit("dirty_stop", caller);
            }
        }
    }

    private Errno GetDirtyBitmap(IUserMemory memory, ulong iova, ulong size, VfioBitmap bitmap)
    {
        if (Behavior.OverflowIsEoverflow)
        {
            if (size == 0)
            {
                return Errno.EINVAL;
            }
            if (!ByteRange.TryFromStartSize(iova, size, out _))
            {
                return Errno.EOVERFLOW;
            }
        }
        else if (size != 0 && !new Iova(iova).TryAdd(size, out _))
        {
            // v6.17 and before: an exclusive end that wraps, so a range ending at 2^64-1 is refused too.
            return Errno.EINVAL;
        }
        Errno check = CheckUserBitmap(bitmap, size);
        if (check != Errno.None)
        {
            return check;
        }
        using (_lock.EnterScope())
        {
            ulong pgsize = _domains.MinPageSizeLocked;
            if (bitmap.Pgsize != pgsize || (iova & (pgsize - 1)) != 0 || size == 0 || (size & (pgsize - 1)) != 0 || !_dirtyTracking)
            {
                return Errno.EINVAL;
            }
            var range = ByteRange.FromStartSize(iova, size);
            if (!_tree.NoBisectionLocked(range))
            {
                return Errno.EINVAL;
            }
            foreach (VfioDma dma in _tree.OverlappingLocked(range))
            {
                Errno e = UpdateUserBitmapLocked(memory, bitmap.Data, dma, new Iova(iova), pgsize);
                if (e != Errno.None)
                {
                    return e;
                }
                PopulateBitmapLocked(dma);
            }
            return Errno.None;
        }
    }

    /// <summary>vfio_dma_bitmap_alloc and vfio_dma_populate_bitmap: a zeroed bitmap of the mapping's pages
    /// plus a spare word, with the externally pinned pages set. EINVAL past INT_MAX pages; ENOMEM when
    /// the <c>bitmap_alloc</c> fault site fires.</summary>
    private Errno AllocateBitmapLocked(VfioDma dma, ulong pgsize)
    {
        ulong npages = dma.RequestedSize / pgsize;
        if (npages > DirtyBitmapPagesMax)
        {
            return Errno.EINVAL;
        }
        if (Faults.ShouldFail("bitmap_alloc"))
        {
            return Errno.ENOMEM;
        }
        NewBitmap(dma, pgsize);
        PopulateBitmapLocked(dma);
        return Errno.None;
    }

    // A zeroed bitmap of the mapping's pages at pgsize, plus a spare word (the kernel shifts in place).
    private static void NewBitmap(VfioDma dma, ulong pgsize)
    {
        ulong npages = dma.RequestedSize / pgsize;
        dma.Bitmap = new ulong[(npages + 63) / 64 + 1];
        dma.BitmapPageSize = pgsize;
    }

    // Resets a mapping's bitmap to exactly its externally pinned pages.
    private static void PopulateBitmapLocked(VfioDma dma)
    {
        if (dma.Bitmap is null)
        {
            return;
        }
        Array.Clear(dma.Bitmap);
        foreach (VpfnRun run in dma.VpfnRuns())
        {
            dma.MarkDirty(ByteRange.FromStartSize(run.Iova, run.Pages << dma.PageShift));
        }
    }

    /// <summary>
    /// update_user_bitmap: writes a mapping's bits into the user bitmap whose bit 0 is
    /// <paramref name="baseIova"/>. Every page counts as dirty while an IOMMU-backed group outside
    /// pinned-page scope could have written anywhere. The bits are shifted to their word position, the
    /// user's whole first word is ORed in when the mapping starts mid-word (bitmap_or over
    /// BITS_TO_LONGS(shift) = one whole word, not just the bits below the mapping), and whole u64 words
    /// are written, so bits past the mapping in a later last word become zero. EFAULT when the user
    /// memory faults.
    /// </summary>
    private Errno UpdateUserBitmapLocked(IUserMemory memory, ulong userBitmap, VfioDma dma, Iova baseIova, ulong pgsize)
    {
        int pgshift = System.Numerics.BitOperations.TrailingZeroCount(pgsize);
        ulong nbits = dma.Size >> pgshift;
        // A page-size change while tracking re-sized every bitmap already (ResizeBitmapsLocked).
        System.Diagnostics.Debug.Assert(dma.Bitmap is not null && dma.BitmapPageSize == pgsize, "bitmap at another page size");
        ulong[] bits = dma.Bitmap!;
        ulong bitOffset = dma.Iova.Minus(baseIova) >> pgshift;
        ulong copyOffset = bitOffset / 64;
        int shift = (int)(bitOffset % 64);
        if (_domains.NumNonPinnedGroupsLocked > 0 && dma.IommuMapped)
        {
            SetBits(bits, nbits);
        }
        ulong wordsOut = (nbits + (ulong)shift + 63) / 64;
        var output = new ulong[wordsOut];
        Span<byte> word = stackalloc byte[8];
        ulong leftover = 0;
        if (shift != 0)
        {
            if (!memory.TryRead(userBitmap + copyOffset * 8, word))
            {
                return Errno.EFAULT;
            }
            leftover = BinaryPrimitives.ReadUInt64LittleEndian(word);
        }
        for (ulong w = 0; w < wordsOut; w++)
        {
            ulong lo = w < (ulong)bits.Length ? bits[w] : 0;
            ulong prev = w > 0 && w - 1 < (ulong)bits.Length ? bits[w - 1] : 0;
            output[w] = shift == 0 ? lo : (lo << shift) | (prev >> (64 - shift));
        }
        ClearPastBits(output, nbits + (ulong)shift);
        output[0] |= leftover;
        // The kernel shifted the mapping's own bitmap in place (why it has a spare word); keep that effect.
        Array.Copy(output, bits, (int)Math.Min((ulong)bits.Length, wordsOut));
        for (ulong w = 0; w < wordsOut; w++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(word, output[w]);
            if (!memory.TryWrite(userBitmap + (copyOffset + w) * 8, word))
            {
                return Errno.EFAULT;
            }
        }
        return Errno.None;
    }

    private static void SetBits(ulong[] bits, ulong count)
    {
        ulong full = count / 64;
        for (ulong w = 0; w < full; w++)
        {
            bits[w] = ulong.MaxValue;
        }
        if (count % 64 != 0)
        {
            bits[full] |= (1UL << (int)(count % 64)) - 1;
        }
    }

    private static void ClearPastBits(ulong[] words, ulong validBits)
    {
        ulong w = validBits / 64;
        if (w < (ulong)words.Length && validBits % 64 != 0)
        {
            words[w] &= (1UL << (int)(validBits % 64)) - 1;
            w++;
        }
        for (; w < (ulong)words.Length; w++)
        {
            words[w] = 0;
        }
    }

    /// <summary>
    /// The minimum page size changed while tracking (a domain came or went). Linux keeps bitmaps sized at
    /// START and would later write past them (spec §3.11: "not reconciled"); the model re-sizes each
    /// bitmap to the new granularity with every page dirty, so nothing is lost and no invariant breaks.
    /// </summary>
    private void ResizeBitmapsLocked(ulong pgsize)
    {
        foreach (VfioDma dma in _tree.AllLocked())
        {
            if (dma.Bitmap is not null && dma.BitmapPageSize != pgsize)
            {
                NewBitmap(dma, pgsize);
                SetBits(dma.Bitmap!, dma.RequestedSize / pgsize);
            }
        }
    }

    /// <summary>Detaching a group outside pinned-page scope while tracking: every page of every mapping
    /// becomes dirty, so nothing it may have written is lost when the scope narrows.</summary>
    private void MarkAllDirtyLocked()
    {
        foreach (VfioDma dma in _tree.AllLocked())
        {
            if (dma.Bitmap is not null)
            {
                SetBits(dma.Bitmap, dma.RequestedSize / dma.BitmapPageSize);
            }
        }
    }
}
