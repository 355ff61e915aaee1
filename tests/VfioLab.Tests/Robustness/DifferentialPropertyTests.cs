using FsCheck;
using FsCheck.Fluent;
using Microsoft.FSharp.Core;
using VfioLab.Fuzzing;
using VfioLab.Simulation;

namespace VfioLab.Tests.Robustness;

/// <summary>
/// FsCheck property: for any sequence of type1 operations (map, unmap v1/v2/ALL/partial, dirty start/get/stop
/// and unmap with a bitmap, attach and detach of groups with other IOMMU page sizes, fork, child exit, device
/// DMA (peer to peer into the GPU's BAR too), the mdev's attach, detach, pin_pages, unpin_pages and dma_rw, the VADDR
/// update, the GPU's device open with its BAR mmap, MAP of the BAR, decode off/on, release, deferred work, hot reset
/// and function reset), the model and the naive per-page
/// reference agree after every operation, under each kernel profile.
/// Seeded (FsCheck prints the seed and the shrunk sequence on failure); shrinking drops operations.
/// </summary>
public sealed class DifferentialPropertyTests
{
    private const ulong Seed = 0x5eed_0006;
    private const ulong Gamma = 0x9e37_79b9_7f4a_7c15;

    [Theory]
    [InlineData(KernelSettings.Seeds, 150)]
    [InlineData(KernelSettings.Linux618, 150)]
    public void AnySequence_ModelAgreesWithReference(string profile, int sequences)
    {
        var campaign = new DifferentialCampaign(profile);
        Gen<RefOp> op =
            from kind in Gen.Elements(Enum.GetValues<RefOpKind>())
            from a in Gen.Choose(0, 63)
            from b in Gen.Choose(0, 63)
            from c in Gen.Choose(0, 63)
            from d in Gen.Choose(0, 63)
            select new RefOp(kind, a, b, c, d);
        Gen<(bool V2, RefOp[] Ops)> sequence =
            from v2 in Gen.Elements(true, false)
            from ops in Gen.ArrayOf(op, 30)
            select (v2, ops);
        Arbitrary<(bool V2, RefOp[] Ops)> arb = Arb.From(sequence, Shrink);
        Config config = Config.QuickThrowOnFailure.WithMaxTest(sequences)
            .WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(Seed, Gamma), FSharpOption<int>.None)));
        Check.One(config, Prop.ForAll(arb, s =>
        {
            string? problem = campaign.Run(s.V2, s.Ops, out _);
            return problem is null ? Prop.Label(true, "agree") : Prop.Label(false, $"seed ({Seed}, {Gamma}): {problem}");
        }));
    }

    // Drop one operation at a time (the differential campaign's own shrinking does the same).
    private static IEnumerable<(bool V2, RefOp[] Ops)> Shrink((bool V2, RefOp[] Ops) s)
    {
        for (int i = s.Ops.Length - 1; i >= 0; i--)
        {
            yield return (s.V2, [.. s.Ops[..i], .. s.Ops[(i + 1)..]]);
        }
    }
}
