using VfioLab.Fuzzing;
using VfioLab.Simulation;

namespace VfioLab.Tests.Robustness;

/// <summary>Shrunk counterexamples of the differential campaign, kept as fixed sequences. Each was a disagreement
/// between the model and the reference; the comment says which side was wrong and why.</summary>
public sealed class DifferentialRegressionTests
{
    private static readonly RefOp[] SeedFour =
        [new(RefOpKind.Map, 60, 56, 41, 17), new(RefOpKind.Unmap, 51, 62, 7, 15), new(RefOpKind.Attach, 47, 62, 3, 27), new(RefOpKind.Map, 2, 25, 31, 21)];

    private static readonly Dictionary<string, (string Profile, bool V2, RefOp[] Ops)> Shrunk = new()
    {
        // Reference bug (seed 4): after the 64 KiB SMMU group joined, a MAP of 4 KiB anonymous pages whose frames
        // are not 64 KiB aligned fails in iommu_map with EINVAL; type1 only warns about an IOMMU page above
        // PAGE_SIZE (spec §2.6), it does not refuse the attach, so alignment of frames is checked at map time.
        ["seed-4-misaligned-frames"] = ("seeds", true, SeedFour),
        // Reference bug (seed 21): a MAP running off the end of the memory into a hole fails with EFAULT even
        // when the run before the hole is not 64 KiB aligned: GUP stops short, the refill at the hole fails the
        // chunk being built before it is mapped (vfio_pin_pages_remote: a refill error unpins the whole chunk).
        ["seed-21-hole-after-run"] = ("linux-6.18", true,
            [new(RefOpKind.Attach, 17, 62, 12, 27), new(RefOpKind.UnmapDirty, 26, 1, 22, 63), new(RefOpKind.Map, 34, 27, 57, 1)]),
        // Model bug (mdev, fixed): the vendor driver lowered its own count of pins when the core refused an unpin
        // of 513 pages, so type1 kept pins the driver no longer knew of (and would never release on unmap).
        ["mdev-unpin-refused-by-core"] = ("seeds", true,
            [new(RefOpKind.MdevAttach, 19, 45, 1, 27), new(RefOpKind.Map, 57, 48, 29, 42), new(RefOpKind.Pin, 27, 15, 57, 13), new(RefOpKind.Unpin, 24, 3, 62, 18)]),
        // Reference bug (dma_rw): a read starting in the last page of the IOVA space carries on at IOVA 0 (the kernel
        // advances a u64), where a WRITE-only mapping answers EPERM; the reference stopped at the wrap with EINVAL.
        ["dma-rw-wraps-past-2^64"] = ("seeds", false,
            [new(RefOpKind.MdevAttach, 0, 0, 0, 0), new(RefOpKind.Map, 0, 13, 42, 23), new(RefOpKind.Map, 63, 49, 45, 25), new(RefOpKind.DmaRw, 47, 56, 18, 54)]),
        // Reference bug (seed 11277 of the 120 s run): the child's mapping, made with only the mdev, is replayed after the
        // child exited when the 64 KiB group joins; iommu_map refuses the 4 KiB run and the unwind's un-charge finds the
        // owner gone (vfio_lock_acct changes nothing then), so the mapping's own locked_vm keeps the replay's charge.
        ["seed-11277-replay-fails-owner-gone"] = ("linux-6.18", true,
            [new(RefOpKind.MdevAttach, 0, 0, 0, 0), new(RefOpKind.GpuDetach, 0, 0, 0, 0), new(RefOpKind.Fork, 19, 30, 55, 38),
                new(RefOpKind.Map, 8, 27, 10, 19), new(RefOpKind.ChildExit, 54, 44, 48, 34), new(RefOpKind.Attach, 47, 36, 15, 63)]),
        // Reference bug (seed 33945): the same after re-accounting skipped the gone owner (its 256 pages stay counted),
        // so the failed replay leaves 512.
        ["seed-33945-reaccount-then-replay-owner-gone"] = ("seeds", true,
            [new(RefOpKind.DirtyGet, 11, 34, 28, 13), new(RefOpKind.MdevAttach, 32, 11, 21, 45), new(RefOpKind.Fork, 30, 10, 43, 11),
                new(RefOpKind.Map, 55, 48, 50, 5), new(RefOpKind.ChildExit, 21, 4, 52, 63), new(RefOpKind.GpuDetach, 6, 1, 32, 58),
                new(RefOpKind.Attach, 39, 61, 8, 38)]),
        // Reference bug (seeds, seed 56815): the GPU released twice, each time with a mapping of its BAR, before any
        // deferred work ran: two unregistrations wait, the reference counted one.
        ["seed-56815-two-releases-pending"] = ("seeds", false,
            [new(RefOpKind.BarOpen, 47, 53, 8, 0), new(RefOpKind.Map, 52, 8, 56, 58), new(RefOpKind.DeviceRelease, 2, 13, 63, 43),
                new(RefOpKind.BarOpen, 23, 62, 44, 21), new(RefOpKind.Map, 62, 12, 1, 54), new(RefOpKind.GpuDetach, 5, 22, 14, 31),
                new(RefOpKind.DeferredWork, 0, 0, 0, 0)]),
    };

    // Fixed sequences that must reach a given path on both sides (so they cannot pass by both sides doing
    // something else): the mdev alone in the container, 2 MiB mappings of the same memory, 512-page pins.
    private static readonly Dictionary<string, (RefOp[] Ops, string Path)> Paths = new()
    {
        // Without a domain each external pin is charged: 512 + 257 pages pass the 768-page limit.
        ["pin-charged-enomem"] = ([Mdev, GpuOut, Map2M(0), Map2M(7), new(RefOpKind.Pin, 1, 0, 6, 0), new(RefOpKind.Pin, 5, 0, 6, 0)],
            "pin-pages-charged ENOMEM"),
        // The GPU's group comes back: replay pins 1024 pages from the attaching process; the limit refuses it all.
        ["replay-enomem"] = ([Mdev, GpuOut, Map2M(0), Map2M(7), new(RefOpKind.GpuAttach, 0, 0, 0, 0)], "attach-group-1 ENOMEM"),
        // The last IOMMU domain goes while two pages are pinned: the mapping stays charged for those two only.
        ["reaccount"] = ([Mdev, Map2M(0), new(RefOpKind.Pin, 1, 0, 2, 0), GpuOut, new(RefOpKind.Unpin, 1, 0, 2, 0)], "close-group-reaccount"),
        // Pinned-page dirty scope: only the pinned pages are reported.
        ["pinned-scope-dirty"] = ([Mdev, GpuOut, Map2M(0), new(RefOpKind.DirtyStart, 0, 0, 0, 0), new(RefOpKind.Pin, 1, 3, 2, 0),
            new(RefOpKind.DirtyGet, 0, 0, 6, 0), new(RefOpKind.UnmapDirty, 0, 0, 6, 0)], "unmap-dirty"),
        // The owner exited: pinning its mapping fails ENODEV.
        ["pin-owner-gone"] = ([new(RefOpKind.Fork, 0, 0, 0, 0), Mdev, new(RefOpKind.Map, 0, 0, 6, 1), new(RefOpKind.ChildExit, 0, 0, 0, 0),
            new(RefOpKind.Pin, 1, 0, 0, 0)], "pin-pages ENODEV"),
        // vfio_dma_rw writes across a page boundary with only the mdev: those pages, and only they, are reported dirty.
        ["dma-rw-dirty"] = ([Mdev, GpuOut, Map2M(0), new(RefOpKind.DirtyStart, 0, 0, 0, 0), new(RefOpKind.DmaRw, 1, 0, 3, 1),
            new(RefOpKind.DirtyGet, 0, 0, 6, 0)], "dma-rw-write"),
        // A process other than the owner calling vfio_dma_rw gets EFAULT.
        ["dma-rw-other-mm"] = ([new(RefOpKind.Fork, 0, 0, 0, 0), Mdev, Map2M(0), new(RefOpKind.DmaRw, 1, 0, 0, 4)], "dma-rw-read EFAULT"),
        // VADDR update (spec §3.13): an invalidated user address refuses a group attach (pinning could need it).
        ["vaddr-attach-ebusy"] = ([Map2M(0), Invalidate(0), new(RefOpKind.Attach, 0, 0, 0, 0)], "attach-group-2 EBUSY"),
        // Invalidating twice: the ALL walk marks the first mapping, meets the second already invalid, undoes its mark.
        ["vaddr-twice-rollback"] = ([Map1M(0, 0), Map1M(5, 3), Invalidate(1), new(RefOpKind.UnmapVaddr, 0, 0, 0, 1)], "unmap-vaddr-all EINVAL"),
        // The child gives the address back: the mapping's 512 pages move from the VMM's locked_vm to the child's.
        ["vaddr-update-moves-owner"] = ([new(RefOpKind.Fork, 0, 0, 0, 0), Map2M(0), Invalidate(0), new(RefOpKind.MapVaddr, 1, 0, 0, 1)],
            "map-vaddr-child"),
        // The VMM takes over the child's 512 pages on top of its own 512: past the 768-page limit, the mapping stays invalid.
        ["vaddr-update-enomem"] = ([new(RefOpKind.Fork, 0, 0, 0, 0), Map2M(0), new(RefOpKind.Map, 7, 0, 6, 1), Invalidate(1),
            new(RefOpKind.MapVaddr, 5, 0, 0, 0)], "map-vaddr ENOMEM"),
        // With the mdev's emulated group attached the feature is off: UNMAP with VADDR is refused, the extension says 0.
        ["vaddr-emulated-ebusy"] = ([Mdev, Map2M(0), Invalidate(0), new(RefOpKind.UpdateVaddrExtension, 0, 0, 0, 0)], "unmap-vaddr EBUSY"),
        // Kernel behaviour both sides reproduce (v6.18 source): the child's 256-page mapping is re-accounted after the
        // child exited (the un-charge is skipped, dma->locked_vm stays 256), replay charges it again (512), and the VMM's
        // VADDR update takes over all 512 for 256 pinned pages; the unmap gives back 256, the VMM keeps 256 charged.
        ["vaddr-takes-stale-charge"] = ([Mdev, new(RefOpKind.Fork, 0, 0, 0, 0), new(RefOpKind.Map, 0, 0, 5, 1), new(RefOpKind.ChildExit, 0, 0, 0, 0),
            GpuOut, new(RefOpKind.Attach, 0, 0, 0, 0), new(RefOpKind.MdevDetach, 0, 0, 0, 0), Invalidate(0), new(RefOpKind.MapVaddr, 1, 0, 0, 0),
            new(RefOpKind.Unmap, 0, 0, 5, 0)], "map-vaddr"),
        // The extension answers 0 while the emulated group is attached, 1 once it left (the GPU's group remains).
        ["vaddr-extension-off"] = ([Mdev, new(RefOpKind.UpdateVaddrExtension, 0, 0, 0, 0)], "check-extension-update-vaddr-0"),
        ["vaddr-extension-on"] = ([Mdev, new(RefOpKind.MdevDetach, 0, 0, 0, 0), new(RefOpKind.UpdateVaddrExtension, 0, 0, 0, 0)],
            "check-extension-update-vaddr-1"),
        // Nothing there to update.
        ["vaddr-update-enoent"] = ([new(RefOpKind.MapVaddr, 0, 0, 1, 0)], "map-vaddr ENOENT"),
        // An invalidated mapping is unmapped as any other (the count goes down with it); a mapping still valid cannot be updated.
        ["vaddr-unmap-invalid"] = ([Map1M(0, 0), Map1M(5, 3), Invalidate(0), new(RefOpKind.Unmap, 0, 0, 5, 0), new(RefOpKind.MapVaddr, 1, 0, 0, 0)],
            "map-vaddr EINVAL"),
    };

    // Fixed sequences whose path differs by profile: device memory, whose release the seeds design tracks and
    // upstream does not.
    private static readonly Dictionary<string, (RefOp[] Ops, string[] Seeds, string[] Linux)> ProfilePaths = new()
    {
        // The NIC writes into the GPU's BAR through the IOMMU, then the GPU is released: seeds removes the mapping
        // at once (the NIC's next write faults) and unregisters at run_deferred_work; upstream keeps the stale
        // translation and the NIC still writes the BAR.
        ["bar-release"] = ([Bar, Nic, MapBar(5), NicWrite(5), new(RefOpKind.DeviceRelease, 0, 0, 0, 0), NicWrite(5),
            new(RefOpKind.DeferredWork, 0, 0, 0, 0)],
            ["device-release-held", "dma-write-nic EFAULT", "run-deferred-work-1"], ["device-release", "dma-write-p2p-nic", "run-deferred-work-0"]),
        // With memory decode off the BAR answers no transaction; seeds still maps it (the device translates, page
        // tables unused), upstream's walk faults the zapped mmap and vfio-pci refuses it (EFAULT).
        ["bar-decode-off"] = ([Bar, Nic, new(RefOpKind.Decode, 0, 0, 0, 0), MapBar(5), NicWrite(5)], ["dma-write-p2p-nic EFAULT"], ["map EFAULT"]),
        // A hot reset of the slot and a function reset zap the BAR mmap and leave type1 alone: a later MAP of the BAR
        // faults it back in (decode restored), the first mapping's translation is unchanged.
        ["bar-reset"] = ([Bar, Nic, MapBar(5), new(RefOpKind.Reset, 0, 0, 0, 0), new(RefOpKind.Reset, 0, 1, 0, 0), MapBar(7),
            NicWrite(5)], ["pci-hot-reset", "device-reset", "dma-write-p2p-nic"], ["pci-hot-reset", "device-reset", "dma-write-p2p-nic"]),
        // Model bug (fixed): vfio_pin_pages of a BAR page with decode off. Seeds asks the device, as MAP does, and
        // pfn_valid refuses the frame (EINVAL); upstream walks the zapped mmap and faults (EFAULT). The model walked
        // under seeds too.
        ["bar-pin-decode-off"] = ([Bar, Mdev, MapBar(5), new(RefOpKind.Decode, 0, 0, 0, 0), new(RefOpKind.Pin, 1, 0, 0, 0)],
            ["pin-pages EINVAL"], ["pin-pages EFAULT"]),
    };

    private static RefOp Bar => new(RefOpKind.BarOpen, 0, 0, 0, 0);

    private static RefOp Nic => new(RefOpKind.Attach, 0, 0, 0, 0);

    // MAP of the whole BAR (D from 48: the BAR's mmap), read-write, at IOVA table entry iovaIndex.
    private static RefOp MapBar(int iovaIndex) => new(RefOpKind.Map, iovaIndex, 0, 5, 48);

    // The NIC writes 8 bytes at IOVA table entry iovaIndex.
    private static RefOp NicWrite(int iovaIndex) => new(RefOpKind.Dma, iovaIndex, 0, 3, 1);

    public static TheoryData<string> ProfilePathCases() => [.. ProfilePaths.Keys];

    [Theory]
    [MemberData(nameof(ProfilePathCases))]
    public void Run_DeviceMemorySequence_BothSidesAgreeOnTheProfilesPath(string name)
    {
        (RefOp[] ops, string[] seeds, string[] linux) = ProfilePaths[name];
        foreach ((string profile, string[] paths) in new[] { (KernelSettings.Seeds, seeds), (KernelSettings.Linux618, linux) })
        {
            var campaign = new DifferentialCampaign(profile);
            string? problem = campaign.Run(true, ops, out int at);
            Assert.True(problem is null, $"{profile} op {at}: {problem}");
            Assert.All(paths, path => Assert.Contains(path, campaign.Figures.ErrnoPathNames.Concat(campaign.Figures.SuccessPathNames)));
        }
    }

    [Fact]
    public void Run_StrictMmioMaps_SeedsRefusesOtherDriversMmioToMapAndPin()
    {
        // Another driver's MMIO (vaddr table entry 7): seeds' strict_mmio_maps refuses it to MAP and to vfio_pin_pages
        // (ENODEV, no vfio device behind the VMA); upstream maps it, and pin_pages finds no struct page (EINVAL).
        RefOp mapMmio = new(RefOpKind.Map, 5, 7, 3, 0);
        RefOp[] ops = [mapMmio, Mdev, GpuOut, mapMmio, new(RefOpKind.Pin, 1, 0, 0, 0)];
        foreach ((string profile, string[] paths) in new[]
        {
            (KernelSettings.Seeds, new[] { "map ENODEV", "pin-pages-charged ENODEV" }),
            (KernelSettings.Linux618, new[] { "map", "pin-pages-charged EINVAL" }),
        })
        {
            var campaign = new DifferentialCampaign(profile);
            string? problem = campaign.Run(true, ops, out int at, strict: true);
            Assert.True(problem is null, $"{profile} op {at}: {problem}");
            Assert.All(paths, path => Assert.Contains(path, campaign.Figures.ErrnoPathNames.Concat(campaign.Figures.SuccessPathNames)));
        }
    }

    private static RefOp Mdev => new(RefOpKind.MdevAttach, 0, 0, 0, 0);

    private static RefOp GpuOut => new(RefOpKind.GpuDetach, 0, 0, 0, 0);

    public static TheoryData<string> Cases() => [.. Shrunk.Keys];

    public static TheoryData<string> PathCases() => [.. Paths.Keys];

    [Theory]
    [MemberData(nameof(PathCases))]
    public void Run_FixedSequence_BothSidesAgreeOnThePath(string name)
    {
        (RefOp[] ops, string path) = Paths[name];
        foreach (string profile in new[] { KernelSettings.Seeds, KernelSettings.Linux618 })
        {
            var campaign = new DifferentialCampaign(profile);
            string? problem = campaign.Run(true, ops, out int at);
            Assert.True(problem is null, $"{profile} op {at}: {problem}");
            Assert.Contains(path, campaign.Figures.ErrnoPathNames.Concat(campaign.Figures.SuccessPathNames));
        }
    }

    // UNMAP with VADDR of exactly the index-th mapping.
    private static RefOp Invalidate(int index) => new(RefOpKind.UnmapVaddr, 1 + (4 * index), 0, 1, 0);

    // MAP of 1 MiB of the rig's read-write memory at IOVA table entry iovaIndex from vaddr table entry vaddrIndex.
    private static RefOp Map1M(int iovaIndex, int vaddrIndex) => new(RefOpKind.Map, iovaIndex, vaddrIndex, 5, 0);

    // MAP of 2 MiB of the rig's read-write memory (its first byte) at IOVA table entry iovaIndex.
    private static RefOp Map2M(int iovaIndex) => new(RefOpKind.Map, iovaIndex, 0, 6, 0);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Run_ShrunkCounterexample_ModelAgreesWithReference(string name)
    {
        (string profile, bool v2, RefOp[] ops) = Shrunk[name];
        string? problem = new DifferentialCampaign(profile).Run(v2, ops, out int at);
        Assert.True(problem is null, $"op {at}: {problem}");
    }

    [Fact]
    public void Run_AttachThenMisalignedFrames_BothSidesAnswerEinval()
    {
        // The case above must exercise the EINVAL path on both sides, not pass by both succeeding.
        var campaign = new DifferentialCampaign(KernelSettings.Seeds);
        Assert.Null(campaign.Run(true, SeedFour, out _));
        Assert.Contains("attach-group-3", campaign.Figures.SuccessPathNames);
        Assert.Contains("map EINVAL", campaign.Figures.ErrnoPathNames);
    }
}
