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
    };

    public static TheoryData<string> Cases() => [.. Shrunk.Keys];

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
