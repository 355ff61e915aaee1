using System.Buffers.Binary;
using System.Numerics;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Vfio;

namespace VfioLab.Type1;

/// <summary>
/// Dirty page tracking of one type1 container (spec §1.7, §3.11): <c>dirty_page_tracking</c>, VFIO_IOMMU_DIRTY_PAGES
/// (START, STOP, GET_BITMAP), each mapping's bitmap (<c>vfio_dma_bitmap_alloc</c>, populated with its external pins),
/// <c>update_user_bitmap</c> for GET_BITMAP and UNMAP's GET_DIRTY_BITMAP, and the bitmaps' answers to a page-size change
/// or a group leaving pinned-page scope.
/// </summary>
/// <remarks>
/// Lock: the container's type1 lock (<see cref="Type1Context.Lock"/>) protects <c>_tracking</c> and every mapping's
/// <see cref="VfioDma.Bitmap"/> and <see cref="VfioDma.BitmapPageSize"/>; every <c>*Locked</c> member asserts it, and
/// the ioctl's entry points take it. The bitmaps are the model's only per-page structures: the uAPI defines them as
/// bitmaps.
/// </remarks>
internal sealed class DirtyTracker(Type1Context ctx, DmaTree tree, DomainSet domains)
{
    private const string Overflow618 = "linux-6.18: 6012379ede6a (Type1Behavior.OverflowIsEoverflow)";

    /// <summary>The largest user bitmap (DIRTY_BITMAP_SIZE_MAX): bytes for INT_MAX pages rounded to u64.</summary>
    public const ulong DirtyBitmapSizeMax = 256UL << 20;

    /// <summary>DIRTY_BITMAP_PAGES_MAX: INT_MAX bits per mapping.</summary>
    private const ulong DirtyBitmapPagesMax = int.MaxValue;

    private bool _tracking;

    /// <summary><c>dirty_page_tracking</c>.</summary>
    public bool TrackingLocked
    {
        get
        {
            ctx.AssertLocked();
            return _tracking;
        }
    }

    /// <summary>VFIO_IOMMU_DIRTY_PAGES: EACCES (v1), EFAULT (copy in), EINVAL (argsz, flags, not exactly one of START,
    /// STOP, GET_BITMAP, a GET_BITMAP argsz without its range), then the operation's own errors.</summary>
    public Errno DirtyPagesIoctl(VfioCallContext context, ref IoctlArgument argument)
    {
        if (!ctx.V2)
        {
            return Refusals.Refuse(Errno.EACCES, "vfio_iommu_type1_dirty_pages", "dirty tracking needs a VFIO_TYPE1v2_IOMMU container; this one is v1");
        }
        Span<byte> raw = stackalloc byte[VfioIommuType1DirtyBitmap.SizeOf];
        if (!argument.TryCopyFrom(0, raw))
        {
            return Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_dirty_pages", "copy_from_user of the {0}-byte struct vfio_iommu_type1_dirty_bitmap faulted",
                (ulong)raw.Length);
        }
        VfioIommuType1DirtyBitmap.TryRead(raw, out VfioIommuType1DirtyBitmap dirty);
        const DirtyPagesFlags known = DirtyPagesFlags.Start | DirtyPagesFlags.Stop | DirtyPagesFlags.GetBitmap;
        if (dirty.Argsz < VfioIommuType1DirtyBitmap.MinSize || (dirty.Flags & ~known) != 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_dirty_pages", dirty.Argsz < VfioIommuType1DirtyBitmap.MinSize
                ? "argsz {0} is below minsz {1}"
                : "flags 0x{2:x} has bits outside START|STOP|GET_BITMAP", dirty.Argsz, (ulong)VfioIommuType1DirtyBitmap.MinSize, (ulong)dirty.Flags);
        }
        switch (dirty.Flags)
        {
            case DirtyPagesFlags.Start:
                return Start(context.Process);
            case DirtyPagesFlags.Stop:
                Stop(context.Process);
                return Errno.None;
            case DirtyPagesFlags.GetBitmap:
                break;
            default:
                return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_dirty_pages", "flags 0x{0:x}: exactly one of START, STOP and GET_BITMAP must be set",
                    (ulong)dirty.Flags);
        }
        if (dirty.Argsz - VfioIommuType1DirtyBitmap.MinSize < VfioIommuType1DirtyBitmapGet.SizeOf)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_dirty_pages", "GET_BITMAP: argsz {0} leaves no room for the {1}-byte range and bitmap",
                dirty.Argsz, (ulong)VfioIommuType1DirtyBitmapGet.SizeOf);
        }
        Span<byte> getRaw = stackalloc byte[VfioIommuType1DirtyBitmapGet.SizeOf];
        if (!argument.TryCopyFrom(VfioIommuType1DirtyBitmap.Offsets.Data, getRaw))
        {
            return Refusals.Refuse(Errno.EFAULT, "vfio_iommu_type1_dirty_pages", "copy_from_user of the GET_BITMAP range at offset {0} faulted",
                (ulong)VfioIommuType1DirtyBitmap.Offsets.Data);
        }
        VfioIommuType1DirtyBitmapGet.TryRead(getRaw, out VfioIommuType1DirtyBitmapGet range);
        return GetBitmap(context.Memory, range.Iova, range.Size, range.Bitmap);
    }

    /// <summary>access_ok on the user bitmap's range, then verify_bitmap_size for <paramref name="size"/> bytes of IOVA
    /// at its page size: EINVAL for a range that wraps or passes TASK_SIZE, a page size of 0, or a bitmap of no bytes,
    /// too few, or more than <see cref="DirtyBitmapSizeMax"/>.</summary>
    public static Errno CheckUserBitmap(VfioBitmap bitmap, ulong size)
    {
        if (!new HostVirtAddr(bitmap.Data).TryAdd(bitmap.Size, out HostVirtAddr end) || end.Value > AddressSpace.TaskSize)
        {
            return Refusals.Refuse(Errno.EINVAL, "access_ok", "the user bitmap [0x{0:x}, +0x{1:x}) passes TASK_SIZE 0x{2:x}", bitmap.Data, bitmap.Size,
                AddressSpace.TaskSize);
        }
        // pgsize 0 is undefined behaviour in the kernel (__ffs(0)); the model refuses it.
        if (bitmap.Pgsize == 0)
        {
            return Refusals.Refuse(Errno.EINVAL, "verify_bitmap_size", "bitmap pgsize is 0 (undefined in the kernel: __ffs(0); the model refuses it)");
        }
        ulong npages = size >> BitOperations.TrailingZeroCount(bitmap.Pgsize);
        return npages == 0 || bitmap.Size == 0 || bitmap.Size > DirtyBitmapSizeMax || bitmap.Size < BitmapBytes(npages)
            ? Refusals.Refuse(Errno.EINVAL, "verify_bitmap_size",
                "a bitmap of {0} bytes for {1} pages of 0x{2:x} (it needs {3} bytes, at most 256 MiB, and at least one page)", bitmap.Size, npages, bitmap.Pgsize,
                BitmapBytes(npages))
            : Errno.None;
    }

    /// <summary>A page of a mapping was written or pinned by a device: its bit is set while tracking.</summary>
    public void MarkDirtyLocked(VfioDma dma, ByteRange range)
    {
        ctx.AssertLocked();
        if (_tracking)
        {
            dma.MarkDirty(range);
        }
    }

    /// <summary>Release: tracking stops (the mappings and their bitmaps are gone already).</summary>
    public void ResetLocked()
    {
        ctx.AssertLocked();
        _tracking = false;
    }

    /// <summary>Calls <paramref name="visit"/> with (mapping IOVA, bitmap words) for every mapping that has a dirty
    /// bitmap, in IOVA order, under the container's lock; the callback must not keep the array. The one per-page state
    /// the snapshot leaves out, read for whole-state digests (Checks/StateDigest).</summary>
    public void VisitBitmaps(Action<ulong, ulong[]> visit)
    {
        using (ctx.Lock.EnterScope())
        {
            var seen = new HashSet<VfioDma>();
            foreach (Run<DmaRef> r in tree.RunsLocked())
            {
                VfioDma dma = r.Value.Dma;
                if (dma.Bitmap is not null && seen.Add(dma))
                {
                    visit(dma.Iova.Value, dma.Bitmap);
                }
            }
        }
    }

    /// <summary>DIRTY_PAGES START: allocates every mapping's bitmap (EINVAL past INT_MAX pages, ENOMEM;
    /// on failure none stay allocated), seeded with its external pins. Idempotent.</summary>
    public Errno Start(Process? caller)
    {
        using (ctx.Lock.EnterScope())
        {
            if (_tracking)
            {
                return Errno.None;
            }
            ulong pgsize = domains.MinPageSizeLocked;
            List<VfioDma> dmas = tree.AllLocked();
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
            _tracking = true;
            if (ctx.Trace.Enabled)
            {
                ctx.Emit(TraceKind.DirtyStart, caller, TraceLog.F("pgsize", pgsize), TraceLog.F("mappings", dmas.Count));
            }
            return Errno.None;
        }
    }

    /// <summary>DIRTY_PAGES STOP: discards every bitmap.</summary>
    public void Stop(Process? caller)
    {
        using (ctx.Lock.EnterScope())
        {
            if (!_tracking)
            {
                return;
            }
            _tracking = false;
            foreach (VfioDma dma in tree.AllLocked())
            {
                dma.Bitmap = null;
                dma.BitmapPageSize = 0;
            }
            if (ctx.Trace.Enabled)
            {
                ctx.Emit(TraceKind.DirtyStop, caller);
            }
        }
    }

    /// <summary>DIRTY_PAGES GET_BITMAP: v6.18's size-0 and overflow checks (EINVAL, EOVERFLOW; v6.17: EINVAL for a range
    /// whose exclusive end wraps), the user bitmap (EINVAL), then under the lock EINVAL for another page size, a range
    /// off it, tracking off, or (v2) a mapping bisected; EFAULT when the user bitmap faults. Each mapping's bitmap is
    /// written out and re-seeded with its external pins.</summary>
    public Errno GetBitmap(IUserMemory memory, ulong iova, ulong size, VfioBitmap bitmap)
    {
        if (ctx.Behavior.OverflowIsEoverflow)
        {
            if (size == 0)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_dirty_pages", "GET_BITMAP: size is 0", source: Overflow618);
            }
            if (!ByteRange.TryFromStartSize(iova, size, out _))
            {
                return Refusals.Refuse(Errno.EOVERFLOW, "vfio_iommu_type1_dirty_pages", "GET_BITMAP: iova 0x{0:x} + size 0x{1:x} - 1 wraps past 2^64", iova, size,
                    source: Overflow618);
            }
        }
        else if (size != 0 && !new Iova(iova).TryAdd(size, out _))
        {
            // v6.17 and before: an exclusive end that wraps, so a range ending at 2^64-1 is refused too.
            return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_dirty_pages", "GET_BITMAP: iova 0x{0:x} + size 0x{1:x} wraps past 2^64", iova, size,
                source: "linux-6.12 and older (before 6012379ede6a, v6.18)");
        }
        Errno check = CheckUserBitmap(bitmap, size);
        if (check != Errno.None)
        {
            return check;
        }
        using (ctx.Lock.EnterScope())
        {
            ulong pgsize = domains.MinPageSizeLocked;
            if (bitmap.Pgsize != pgsize || (iova & (pgsize - 1)) != 0 || size == 0 || (size & (pgsize - 1)) != 0 || !_tracking)
            {
                return Refusals.Refuse(Errno.EINVAL, "vfio_iommu_type1_dirty_pages", !_tracking
                    ? "GET_BITMAP while dirty tracking is not started"
                    : "GET_BITMAP: bitmap pgsize 0x{0:x}, iova 0x{1:x} and size 0x{2:x} must match and be multiples of the smallest IOMMU page 0x{3:x}",
                    bitmap.Pgsize, iova, size, pgsize);
            }
            var range = ByteRange.FromStartSize(iova, size);
            if (!tree.NoBisectionLocked(range))
            {
                return tree.RefuseBisectionLocked(range, "vfio_iova_dirty_bitmap");
            }
            foreach (VfioDma dma in tree.OverlappingLocked(range))
            {
                Errno e = UpdateUserBitmapLocked(memory, new HostVirtAddr(bitmap.Data), dma, new Iova(iova), pgsize);
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
    public Errno AllocateBitmapLocked(VfioDma dma, ulong pgsize)
    {
        ctx.AssertLocked();
        ulong npages = dma.RequestedSize / pgsize;
        if (npages > DirtyBitmapPagesMax)
        {
            return Refusals.Refuse(Errno.EINVAL, "vfio_dma_bitmap_alloc", "the mapping at 0x{0:x} has {1} pages of 0x{2:x}, more than a bitmap holds (INT_MAX bits)",
                dma.Iova.Value, npages, pgsize);
        }
        if (ctx.Faults.ShouldFail(FaultSite.BitmapAlloc))
        {
            return Refusals.Refuse(Errno.ENOMEM, "vfio_dma_bitmap_alloc", "allocating the dirty bitmap of the mapping at 0x{0:x} failed (injected)", dma.Iova.Value);
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
    private void PopulateBitmapLocked(VfioDma dma)
    {
        ctx.AssertLocked();
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
    public Errno UpdateUserBitmapLocked(IUserMemory memory, HostVirtAddr userBitmap, VfioDma dma, Iova baseIova, ulong pgsize)
    {
        ctx.AssertLocked();
        int pgshift = BitOperations.TrailingZeroCount(pgsize);
        ulong nbits = dma.Size >> pgshift;
        // A page-size change while tracking re-sized every bitmap already (OnPageSizesChangedLocked).
        System.Diagnostics.Debug.Assert(dma.Bitmap is not null && dma.BitmapPageSize == pgsize, "bitmap at another page size");
        ulong[] bits = dma.Bitmap!;
        ulong bitOffset = dma.Iova.Minus(baseIova) >> pgshift;
        ulong copyOffset = bitOffset / 64;
        int shift = (int)(bitOffset % 64);
        if (domains.NumNonPinnedGroupsLocked > 0 && dma.IommuMapped)
        {
            SetBits(bits, nbits);
        }
        ulong wordsOut = (nbits + (ulong)shift + 63) / 64;
        var output = new ulong[wordsOut];
        Span<byte> word = stackalloc byte[8];
        ulong leftover = 0;
        if (shift != 0)
        {
            if (!memory.TryRead(userBitmap.Plus(copyOffset * 8).Value, word))
            {
                return Refusals.Refuse(Errno.EFAULT, "update_user_bitmap", "reading the user bitmap word at 0x{0:x} faulted", userBitmap.Plus(copyOffset * 8).Value);
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
            if (!memory.TryWrite(userBitmap.Plus((copyOffset + w) * 8).Value, word))
            {
                return Refusals.Refuse(Errno.EFAULT, "update_user_bitmap", "writing the user bitmap word at 0x{0:x} faulted", userBitmap.Plus((copyOffset + w) * 8).Value);
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
    public void OnPageSizesChangedLocked()
    {
        ctx.AssertLocked();
        if (!_tracking)
        {
            return;
        }
        ulong pgsize = domains.MinPageSizeLocked;
        foreach (VfioDma dma in tree.AllLocked())
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
    public void MarkAllDirtyLocked()
    {
        ctx.AssertLocked();
        if (!_tracking)
        {
            return;
        }
        foreach (VfioDma dma in tree.AllLocked())
        {
            if (dma.Bitmap is not null)
            {
                SetBits(dma.Bitmap, dma.RequestedSize / dma.BitmapPageSize);
            }
        }
    }

    /// <summary>DIRTY_BITMAP_BYTES: bytes of whole u64 words for <paramref name="bits"/> bits.</summary>
    private static ulong BitmapBytes(ulong bits) => bits / 64 * 8 + (bits % 64 == 0 ? 0UL : 8UL);
}
