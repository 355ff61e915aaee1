using VfioLab.Abi;

namespace VfioLab.Fuzzing;

// The mediated device's side of the reference: external pins page by page (vfio_pin_pages,
// vfio_unpin_pages), vfio_dma_rw, and the driver releasing its pins.
internal sealed partial class Type1Reference
{
    /// <summary>The mdev's device was released: its driver unpins everything it pinned.</summary>
    public void MdevRelease()
    {
        foreach (Mapping m in Mappings.Values)
        {
            DropExternalPins(m);
        }
    }

    /// <summary>
    /// vfio_pin_pages from the mdev: the core's checks (EINVAL: count 0 or the device not open; E2BIG past 512
    /// pages), then type1's (EACCES on TYPE1, EOVERFLOW for a wrapping range, EBUSY while a user address is invalidated), then page by page: EINVAL outside
    /// every mapping, EPERM for a prot beyond the mapping's, a page already pinned counted again, else pinned from
    /// the owner's mm: ENODEV when it exited, EFAULT for a hole or a read-only page of a writable mapping (ENODEV for
    /// another driver's MMIO under seeds' strict_mmio_maps), EINVAL
    /// for a PFNMAP frame (no struct page), ENOMEM when charging it (only without a domain) passes RLIMIT_MEMLOCK.
    /// All or nothing; a new pin marks its page dirty while tracking. Returns the count or -errno.
    /// </summary>
    public long PinPages(ulong iova, int npage, bool read, bool write, bool deviceOpen)
    {
        if (npage == 0 || !deviceOpen)
        {
            return Errno.EINVAL.AsReturn();
        }
        if (npage > PinPagesMax)
        {
            return Errno.E2BIG.AsReturn();
        }
        if (!v2)
        {
            return Errno.EACCES.AsReturn();
        }
        if (iova + (((ulong)npage * Page) - 1) < iova)
        {
            return Errno.EOVERFLOW.AsReturn();
        }
        if (VaddrInvalidCount > 0)
        {
            return Errno.EBUSY.AsReturn();
        }
        var done = new List<(Mapping M, ulong Page, bool New, bool Charged)>();
        for (int i = 0; i < npage; i++)
        {
            ulong at = iova + ((ulong)i * Page);
            Errno e = PinOne(at, read, write, out (Mapping M, ulong Page, bool New, bool Charged) pinned);
            if (e != Errno.None)
            {
                for (int j = done.Count - 1; j >= 0; j--)
                {
                    (Mapping m, ulong page, bool isNew, bool charged) = done[j];
                    if (isNew)
                    {
                        m.Vpfns.Remove(page);
                        if (charged)
                        {
                            Account(m, -1);
                        }
                    }
                    else
                    {
                        (ulong pfn, uint refs) = m.Vpfns[page];
                        m.Vpfns[page] = (pfn, refs - 1);
                    }
                }
                return e.AsReturn();
            }
            done.Add(pinned);
        }
        return npage;
    }

    /// <summary>vfio_unpin_pages from the mdev: one count off each page's external pin (at zero the page is
    /// unpinned and, without a domain, un-charged), stopping at the first page outside every mapping. Returns
    /// whether the kernel would WARN (misuse, or a stop before the last page).</summary>
    public bool UnpinPages(ulong iova, int npage, bool deviceOpen)
    {
        if (!deviceOpen || npage <= 0 || npage > PinPagesMax || !v2 || iova + (((ulong)npage * Page) - 1) < iova)
        {
            return true;
        }
        for (int i = 0; i < npage; i++)
        {
            ulong at = iova + ((ulong)i * Page);
            Mapping? m = Find(at);
            if (m is null)
            {
                return true;
            }
            UnpinOne(m, m.PageOf(at));
        }
        return false;
    }

    /// <summary>
    /// vfio_dma_rw from the mdev of <paramref name="len"/> bytes at <paramref name="iova"/>, by a kernel thread
    /// (<paramref name="caller"/> null) or a process: EINVAL for no data or the device not open; EBUSY while a user address is invalidated; then chunk by
    /// chunk, each up to the end of the mapping holding its first byte: EINVAL (no mapping), EPERM (a write to a
    /// mapping without WRITE, any access to one without READ, the owner gone), EFAULT (a process other than the
    /// owner, or the owner's memory faults: a hole, a write to read-only memory). A written chunk marks its pages
    /// dirty while tracking. Returns the errno and the chunks copied (owner, user address, offset in the buffer,
    /// length); chunks before a failing one stay copied.
    /// </summary>
    public (Errno Error, List<(int Pid, ulong Vaddr, int Offset, int Count)> Chunks) DmaRw(ulong iova, int len, bool write, int? caller, bool deviceOpen)
    {
        var chunks = new List<(int Pid, ulong Vaddr, int Offset, int Count)>();
        if (len == 0 || !deviceOpen)
        {
            return (Errno.EINVAL, chunks);
        }
        if (VaddrInvalidCount > 0)
        {
            return (Errno.EBUSY, chunks);
        }
        int done = 0;
        while (done < len)
        {
            // The kernel advances a u64 IOVA: past 2^64 it wraps to 0 and carries on there.
            ulong at = unchecked(iova + (ulong)done);
            Mapping? m = Find(at);
            if (m is null)
            {
                return (Errno.EINVAL, chunks);
            }
            if ((write && !m.Write) || !m.Read || !alive(m.Owner))
            {
                return (Errno.EPERM, chunks);
            }
            if (caller is int pid && pid != m.Owner)
            {
                return (Errno.EFAULT, chunks);
            }
            int count = (int)Math.Min((ulong)(len - done), m.Last - at + 1);
            ulong vaddr = m.Vaddr + (at - m.Iova);
            for (ulong p = vaddr & ~(Page - 1); p <= vaddr + (ulong)(count - 1); p += Page)
            {
                if (CpuAccessFaults(m.Owner, p, write))
                {
                    return (Errno.EFAULT, chunks);
                }
            }
            chunks.Add((m.Owner, vaddr, done, count));
            if (write && Tracking)
            {
                m.MarkDirty(at, at + (ulong)(count - 1));
            }
            done += count;
        }
        return (Errno.None, chunks);
    }

    private Errno PinOne(ulong iova, bool read, bool write, out (Mapping M, ulong Page, bool New, bool Charged) pinned)
    {
        pinned = default;
        Mapping? m = Find(iova);
        if (m is null)
        {
            return Errno.EINVAL;
        }
        if ((read && !m.Read) || (write && !m.Write))
        {
            return Errno.EPERM;
        }
        ulong page = m.PageOf(iova);
        if (m.Vpfns.TryGetValue(page, out (ulong Pfn, uint Refs) v))
        {
            m.Vpfns[page] = (v.Pfn, v.Refs + 1);
            pinned = (m, page, false, false);
            return Errno.None;
        }
        if (!alive(m.Owner))
        {
            return Errno.ENODEV;
        }
        ulong vaddr = m.Vaddr + (page * Page);
        Errno refused = PinError(m.Owner, vaddr, m.Write);
        if (refused != Errno.None)
        {
            return refused;
        }
        if (IsReservedKind(m.Owner, vaddr))
        {
            // Seeds: the device lookup of a BAR page took the device for the mapping before pfn_valid refused it.
            if (DeviceNotifier && Kind(m.Owner, vaddr) == DifferentialRig.MemoryKind.Bar)
            {
                m.HoldsDevice = true;
            }
            return Errno.EINVAL;
        }
        bool charge = !HasDomain;
        if (charge)
        {
            if (LockedVm.GetValueOrDefault(m.Owner) + 1 > memlockPages)
            {
                return Errno.ENOMEM;
            }
            Account(m, 1);
        }
        m.Vpfns[page] = (FrameAt(m.Owner, vaddr), 1);
        if (Tracking)
        {
            m.MarkDirty(iova, iova);
        }
        pinned = (m, page, true, charge);
        return Errno.None;
    }

    private void UnpinOne(Mapping m, ulong page)
    {
        if (!m.Vpfns.TryGetValue(page, out (ulong Pfn, uint Refs) v))
        {
            return;
        }
        if (v.Refs > 1)
        {
            m.Vpfns[page] = (v.Pfn, v.Refs - 1);
            return;
        }
        m.Vpfns.Remove(page);
        if (!HasDomain && alive(m.Owner))
        {
            Account(m, -1);
        }
    }

    private void DropExternalPins(Mapping m)
    {
        foreach (ulong page in m.Vpfns.Keys.ToList())
        {
            while (m.Vpfns.ContainsKey(page))
            {
                UnpinOne(m, page);
            }
        }
    }
}
