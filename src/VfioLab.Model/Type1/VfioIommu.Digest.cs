namespace VfioLab.Type1;

// The one piece of type1 state the inspection snapshot leaves out because it is per page by uAPI
// definition: the dirty bitmaps' contents, read for whole-state digests (Checks/StateDigest).
internal sealed partial class VfioIommu
{
    /// <summary>Calls <paramref name="visit"/> with (mapping IOVA, bitmap words) for every mapping that has a dirty
    /// bitmap, in IOVA order, under the container's lock; the callback must not keep the array.</summary>
    public void VisitDirtyBitmaps(Action<ulong, ulong[]> visit)
    {
        using (_lock.EnterScope())
        {
            var seen = new HashSet<VfioDma>();
            foreach (Collections.Run<DmaRef> r in _tree.RunsLocked())
            {
                VfioDma dma = r.Value.Dma;
                if (dma.Bitmap is not null && seen.Add(dma))
                {
                    visit(dma.Iova.Value, dma.Bitmap);
                }
            }
        }
    }
}
