using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Pci;

namespace VfioLab.Vfio.Pci;

internal sealed partial class VfioPciDriver
{
    /// <inheritdoc />
    public long Mmap(VfioCallContext context, VfioDevice device, MmapRequest request)
    {
        VfioPciDevice pci = State(device);
        int pageShift = pci.PageShift;
        ulong index = request.Pgoff >> (VfioPciDevice.OffsetShift - pageShift);
        if (index >= VfioPci.NumRegions || !request.IsShared || index >= (ulong)VfioPciRegionIndex.Rom)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_core_mmap", !request.IsShared
                ? "a region mmap must be MAP_SHARED"
                : "region {0} is not a BAR (only BARs 0-5 can be mmapped)", index);
        }
        if (!pci.BarMmapSupported((int)index))
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_core_mmap", "BAR {0} cannot be mmapped (absent, I/O, or smaller than a page)", index);
        }
        PciBar bar = pci.Function.Bar((int)index)!;
        ulong pageMask = (1UL << pageShift) - 1;
        ulong physLength = (bar.Size + pageMask) & ~pageMask;
        ulong pgoffInRegion = request.Pgoff & ((1UL << (VfioPciDevice.OffsetShift - pageShift)) - 1);
        ulong reqStart = pgoffInRegion << pageShift;
        if (reqStart > physLength || request.Length > physLength - reqStart)
        {
            return Refusals.RefuseReturn(Errno.EINVAL, "vfio_pci_core_mmap", "[0x{0:x}, +0x{1:x}) passes the end of BAR {2} (0x{3:x} bytes)", reqStart, request.Length, index,
                physLength);
        }
        // The mmap does not use the barmap, but requests the region through it (vfio_pci_core_setup_barmap).
        Errno e = pci.SetupBarMap((int)index, device.Faults);
        if (e != Errno.None)
        {
            return e.AsReturn();
        }
        // Since v6.10 vm_pgoff keeps the region-offset encoding and the VMA belongs to the
        // device's own address space, so unmap_mapping_range over the BAR offsets finds it. The RFC's
        // first version (quirk zap-range-pgoff-mismatch) rewrote it to the BAR's physical pfn instead.
        ulong? vmPgoff = pci.Behavior.ZapRangePgoffMismatch ? (bar.Base.Value >> pageShift) + pgoffInRegion : null;
        // The fault handler maps PMD/PUD blocks where BAR and VMA alignment allow (vfio_pci_mmap_huge_fault,
        // Peter Xu's huge-PFNMAP series, v6.12), which a page-table walk sees as huge blocks.
        request.CreateVma(VmFlags.Io | VmFlags.DontExpand | VmFlags.DontDump, new BarVmaOperations(pci), pci.Mapping, device, vmPgoff,
            hugePfnMap: true);
        return 0;
    }

    /// <inheritdoc />
    /// <remarks>Only the BAR mmaps this driver made map device memory; their pfns follow from the region
    /// index and offset kept in vm_pgoff (vma_to_pfn), whatever the CPU page table holds now.</remarks>
    public bool TryVmaToPfn(VfioDevice device, Vma vma, out Pfn first)
    {
        first = default;
        if (device.Hardware is not VfioPciDevice pci || vma.Operations is not BarVmaOperations ops || !ReferenceEquals(ops.Device, pci))
        {
            return false;
        }
        first = VmaToPfn(pci, vma);
        return true;
    }

    /// <summary>The BAR pfn of a VMA created by <see cref="Mmap"/> (vma_to_pfn): the BAR's first pfn
    /// plus the page offset within the region.</summary>
    internal static Pfn VmaToPfn(VfioPciDevice pci, Vma vma)
    {
        if (pci.Behavior.ZapRangePgoffMismatch)
        {
            // The RFC's first version: vm_pgoff already holds the physical pfn (its fault handler remapped it).
            return new Pfn(vma.VmPgoff);
        }
        int pageShift = pci.PageShift;
        ulong index = vma.VmPgoff >> (VfioPciDevice.OffsetShift - pageShift);
        ulong pgoff = vma.VmPgoff & ((1UL << (VfioPciDevice.OffsetShift - pageShift)) - 1);
        PciBar bar = pci.Function.Bar((int)index)!;
        return new Pfn((bar.Base.Value >> pageShift) + pgoff);
    }

    /// <summary>vfio_pci_mmap_ops: a fault inserts the whole VMA's pfns (d71a989cf5d9, v6.10) while
    /// memory decode is on, under memory_lock for read; otherwise SIGBUS.</summary>
    private sealed class BarVmaOperations(VfioPciDevice pci) : IVmaOperations
    {
        public VfioPciDevice Device => pci;

        public VmFaultResult Fault(Vma vma, HostVirtAddr address, bool write)
        {
            pci.MemoryLock.EnterReadLock();
            try
            {
                if (pci.Revoked || !pci.Function.DecodesMemory)
                {
                    return VmFaultResult.SigBus;
                }
                Errno e = vma.Mm.InsertPfnsLocked(vma, new HostVirtAddr(vma.StartPage << pci.PageShift), VmaToPfn(pci, vma), vma.PageCount, vma.IsWritable);
                return e == Errno.None ? VmFaultResult.Ok : VmFaultResult.SigBus;
            }
            finally
            {
                pci.MemoryLock.ExitReadLock();
            }
        }

        public void Open(Vma vma)
        {
        }

        public void Close(Vma vma)
        {
        }
    }
}
