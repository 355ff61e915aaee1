using VfioLab.Tests.Type1;
using VfioLab.Type1;

namespace VfioLab.Tests.Mdev;

/// <summary>External pins are kept as runs (consecutive pages, consecutive pfns, one reference count), not
/// one object per page as the kernel's pfn_list: a vGPU pinning a whole guest costs what its runs cost.</summary>
public class VpfnRunTests
{
    [Fact]
    public void PinPages_ContiguousPages_FoldIntoOneRunAndSplitOnPartialUnpin()
    {
        var m = new MdevTestHost(new Type1TestHost());
        m.Map(0x100000, 2 * MdevTestHost.MiB);

        Assert.Equal(256, m.Pin(0x100000, 256));
        Assert.Equal(256, m.Pin(0x200000, 256));

        VpfnRun all = Assert.Single(m.Mapping(0x100000).Vpfns);
        Assert.Equal((0x100000UL, 512UL, 1U), (all.Iova, all.Pages, all.RefCount));
        Assert.Equal(512, m.Vpfns(0x100000).Count);

        // A second pin of one page gives it its own reference count: three runs.
        Assert.Equal(1, m.Pin(0x180000, 1));
        Assert.Equal([(0x100000UL, 128UL, 1U), (0x180000UL, 1UL, 2U), (0x181000UL, 383UL, 1U)],
            m.Mapping(0x100000).Vpfns.Select(r => (r.Iova, r.Pages, r.RefCount)));

        // Dropping that extra pin folds them back; unpinning one page cuts a hole.
        Assert.True(m.Unpin(0x180000, 1));
        Assert.Single(m.Mapping(0x100000).Vpfns);
        Assert.True(m.Unpin(0x180000, 1));
        Assert.Equal([(0x100000UL, 128UL), (0x181000UL, 383UL)], m.Mapping(0x100000).Vpfns.Select(r => (r.Iova, r.Pages)));
        Assert.Equal(511, m.Vpfns(0x100000).Count);
        m.AssertClean();
    }
}
