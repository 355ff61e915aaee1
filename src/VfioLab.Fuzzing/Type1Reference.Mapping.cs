namespace VfioLab.Fuzzing;

internal sealed partial class Type1Reference
{
    /// <summary>One mapping, page by page.</summary>
    public sealed class Mapping(ulong iova, ulong size, ulong vaddr, bool read, bool write, int owner, bool[] reserved)
    {
        public ulong Iova { get; } = iova;

        public ulong Size { get; } = size;

        public ulong Last => Iova + (Size - 1);

        /// <summary>The user address of the first byte; a VADDR update replaces it.</summary>
        public ulong Vaddr { get; set; } = vaddr;

        public bool Read { get; } = read;

        public bool Write { get; } = write;

        /// <summary>The pid charged for the mapping (its <c>dma-&gt;mm</c>); a VADDR update may move it.</summary>
        public int Owner { get; set; } = owner;

        /// <summary>Seeds: the mapping reached the device's memory through the device and holds it.</summary>
        public bool HoldsDevice { get; set; }

        /// <summary><c>vaddr_invalid</c>: UNMAP with VADDR invalidated the user address.</summary>
        public bool VaddrInvalid { get; set; }

        /// <summary>Pinned and present in every IOMMU domain (<c>iommu_mapped</c>); false while the container has none.</summary>
        public bool IommuMapped { get; set; }

        /// <summary>The frame of each 4 KiB page, while <see cref="IommuMapped"/>.</summary>
        public ulong[] Pfns { get; set; } = [];

        /// <summary>Whether each page's frame is reserved (PFNMAP or a BAR): never pinned nor charged. Read while
        /// <see cref="IommuMapped"/> (the frames mapped); recomputed from <see cref="Vaddr"/> when pinned anew.</summary>
        public bool[] Reserved { get; set; } = reserved;

        /// <summary>External pins by page index: the frame and the reference count (one page pin each).</summary>
        public SortedDictionary<ulong, (ulong Pfn, uint Refs)> Vpfns { get; } = [];

        /// <summary>Dirty bits by bit index at <see cref="BitmapPgsize"/>, while tracking.</summary>
        public HashSet<ulong> Dirty { get; } = [];

        /// <summary>The page size of the dirty bits.</summary>
        public ulong BitmapPgsize { get; set; }

        public int NonReserved => Reserved.Count(r => !r);

        /// <summary><c>dma-&gt;locked_vm</c>: the pages charged for this mapping. It moves with every charge to its owner
        /// and stays as it is when an un-charge finds the owner gone (vfio_lock_acct changes neither then).</summary>
        public long LockedVm { get; set; }

        /// <summary>The page index holding <paramref name="iova"/>.</summary>
        public ulong PageOf(ulong iova) => (iova - Iova) / Page;

        /// <summary>Sets the dirty bit of every bitmap page overlapping <c>[first, last]</c>.</summary>
        public void MarkDirty(ulong first, ulong last)
        {
            for (ulong bit = (first - Iova) / BitmapPgsize; bit <= (last - Iova) / BitmapPgsize; bit++)
            {
                Dirty.Add(bit);
            }
        }

        /// <summary>Resets the bits to exactly the externally pinned pages.</summary>
        public void PopulateDirty()
        {
            Dirty.Clear();
            foreach (ulong page in Vpfns.Keys)
            {
                Dirty.Add(page * Page / BitmapPgsize);
            }
        }

        /// <summary>Every page dirty at <paramref name="pgsize"/>.</summary>
        public void AllDirty(ulong pgsize)
        {
            BitmapPgsize = pgsize;
            Dirty.Clear();
            for (ulong bit = 0; bit < Size / pgsize; bit++)
            {
                Dirty.Add(bit);
            }
        }
    }
}
