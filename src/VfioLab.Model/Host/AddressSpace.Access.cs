using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Host;

// CPU loads and stores through the page table, faulting pages in first (and breaking COW for
// stores), as a user-space memcpy would.
internal sealed partial class AddressSpace
{
    /// <summary>Reads process memory as the CPU would. Takes the mmap lock for read.</summary>
    public AccessResult ReadMemory(HostVirtAddr address, Span<byte> destination) =>
        Access(address, destination, default, write: false);

    /// <summary>Writes process memory as the CPU would. Takes the mmap lock for read.</summary>
    public AccessResult WriteMemory(HostVirtAddr address, ReadOnlySpan<byte> source) =>
        Access(address, default, source, write: true);

    private AccessResult Access(HostVirtAddr address, Span<byte> destination, ReadOnlySpan<byte> source, bool write)
    {
        ulong length = (ulong)(write ? source.Length : destination.Length);
        if (length == 0)
        {
            return AccessResult.Ok;
        }
        if (!IsAlive || !address.TryAdd(length - 1, out HostVirtAddr lastByte))
        {
            return AccessResult.Fault;
        }
        MmapReadLock();
        try
        {
            ulong done = 0;
            ulong lastPage = lastByte.Value >> PageShift;
            while (done < length)
            {
                ulong a = address.Value + done;
                ulong page = a >> PageShift;
                Vma? vma = FindVmaLocked(new HostVirtAddr(a));
                if (vma is null)
                {
                    return AccessResult.Fault;
                }
                ulong segLast = Math.Min(vma.LastPage, lastPage);
                for (int attempt = 0; ; attempt++)
                {
                    VmFaultResult r = FaultRangeLocked(vma, page, segLast - page + 1, write);
                    if (r != VmFaultResult.Ok)
                    {
                        return r switch
                        {
                            VmFaultResult.SigBus => AccessResult.SigBus,
                            VmFaultResult.Oom => AccessResult.NoMemory,
                            _ => AccessResult.Fault,
                        };
                    }
                    if (CopyPresentLocked(ref done, segLast, destination, source, address, length, write) || attempt == 3)
                    {
                        break;
                    }
                }
                if (done < length && ((address.Value + done) >> PageShift) <= segLast)
                {
                    // Something zapped the pages between the fault and the copy, four times over.
                    return AccessResult.SigBus;
                }
            }
            return AccessResult.Ok;
        }
        finally
        {
            MmapReadUnlock();
        }
    }

    // Copies through present PTEs up to segLast; false if a page went missing (zapped) first.
    private bool CopyPresentLocked(ref ulong done, ulong segLast, Span<byte> destination, ReadOnlySpan<byte> source,
        HostVirtAddr address, ulong length, bool write)
    {
        _mmapLock.AssertHeld();
        ulong pageSize = 1UL << PageShift;
        while (done < length)
        {
            ulong a = address.Value + done;
            ulong page = a >> PageShift;
            if (page > segLast)
            {
                return true;
            }
            Run<Pte> run;
            using (_ptGate.EnterScope())
            {
                if (!_pageTable.TryGet(page, out run) || (write && !run.Value.Writable))
                {
                    return false;
                }
            }
            ulong runEndByte = Math.Min(run.Last, segLast) * pageSize + (pageSize - 1);
            ulong n = Math.Min(length - done, runEndByte - a + 1);
            if (run.Value.ZeroPage)
            {
                // Every page of the run is the zero frame (never written, so zeros), not frames in a row.
                destination.Slice((int)done, (int)n).Clear();
                done += n;
                continue;
            }
            var phys = new PhysAddr((run.ValueAt(page).Pfn.Value << PageShift) + (a & (pageSize - 1)));
            if (write)
            {
                Machine.WritePhysical(phys, source.Slice((int)done, (int)n));
            }
            else
            {
                Machine.ReadPhysical(phys, destination.Slice((int)done, (int)n));
            }
            done += n;
        }
        return true;
    }
}
