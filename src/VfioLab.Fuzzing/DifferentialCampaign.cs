using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using VfioLab.Abi;

namespace VfioLab.Fuzzing;

/// <summary>
/// The differential campaign: runs a sequence of <see cref="RefOp"/>s — map, unmap (v1 and v2, ALL,
/// partial, with a dirty bitmap), dirty start/get/stop, attach and detach of groups with other IOMMU page
/// sizes (the GPU's too, so the mdev may be left alone without a domain), fork, child exit, device DMA, the
/// mdev's attach, detach, pin_pages, unpin_pages and dma_rw — against the model (through system calls on the
/// <see cref="DifferentialRig"/>) and against <see cref="Type1Reference"/>, and after every operation
/// compares the result or errno, the size written back, the user dirty bitmap, <c>locked_vm</c> of every
/// live process, the mapping count, every frame's pin count, every mapping's external pins (page, frame,
/// count) and the vendor driver's own count, and every page's translation in every domain. A discrepancy is shrunk by dropping operations while it persists and reported with a scenario
/// file replaying the shrunk sequence.
/// </summary>
internal sealed partial class DifferentialCampaign(string profile)
{
    /// <summary>Operations per random sequence.</summary>
    public const int SequenceLength = 24;

    private const ulong KiB = 1UL << 10;
    private const ulong MiB = 1UL << 20;

    /// <summary>IOVAs: aligned and not, around the MSI holes, the SMMU's aperture end and 2^64.</summary>
    public static readonly ulong[] Iovas =
    [
        0, 0x1000, 0x10000, 0x20000, 0x30000, 0x100000, 0x110000, 0x200000, 0x7ff0000, 0x8000000, 0xfee00000, 0xfedf0000,
        (1UL << 48) - 0x10000, 1UL << 48, ulong.MaxValue - 0xffff, ulong.MaxValue - 0xfff,
    ];

    /// <summary>User addresses: read-write memory (aligned to 4 KiB or 64 KiB, and running off its end), read-only, PFNMAP, a hole.</summary>
    public static readonly ulong[] Vaddrs =
    [
        DifferentialRig.Ram, DifferentialRig.Ram + 0x1000, DifferentialRig.Ram + 0x10000, DifferentialRig.Ram + 0x100000,
        DifferentialRig.Ram + 0x200000, DifferentialRig.Ram + DifferentialRig.RamSize - 0x10000, DifferentialRig.ReadOnly,
        DifferentialRig.Mmio, DifferentialRig.Mmio + 0x10000, 0x6000_0000, ulong.MaxValue - 0xfff,
    ];

    /// <summary>Sizes.</summary>
    public static readonly ulong[] Sizes = [0x1000, 0x2000, 0x10000, 0x20000, 0x40000, 1 * MiB, 2 * MiB, 0, 64 * KiB * 3];

    /// <summary>Page counts of pin_pages and unpin_pages: small, 0 (EINVAL), the 512 limit and past it (E2BIG).</summary>
    public static readonly int[] PinCounts = [1, 1, 2, 3, 16, 0, 512, 513];

    /// <summary>Lengths of vfio_dma_rw: within a page, a page, across pages and mappings, none (EINVAL).</summary>
    public static readonly int[] RwLengths = [8, 0x1000, 0x1800, 0x3000, 0, 0x21000];

    /// <summary>Host frame layouts the seeds cycle through: 0 is contiguous, else scattered runs of that many pages
    /// (1: every page its own extent in every map of the model; 4: runs shorter than the 16 KiB and 64 KiB IOMMU pages).</summary>
    public static readonly int[] FrameRunPages = [0, 1, 4];

    /// <summary>What a campaign tried and reached.</summary>
    public FuzzFigures Figures { get; } = new();

    /// <summary>Failing cases found (shrunk).</summary>
    public List<FuzzViolation> Violations { get; } = [];

    /// <summary>A random sequence of <paramref name="length"/> operations from <paramref name="rng"/>.</summary>
    public static List<RefOp> RandomSequence(ref SplitMix64 rng, int length)
    {
        var ops = new List<RefOp>(length);
        // One sequence in four starts with the mdev as the container's only group, so mappings are made without
        // an IOMMU domain and external pins are charged.
        if (rng.Next() % 4 == 0)
        {
            ops.Add(new RefOp(RefOpKind.MdevAttach, 0, 0, 0, 0));
            ops.Add(new RefOp(RefOpKind.GpuDetach, 0, 0, 0, 0));
        }
        else if (rng.Next() % 2 == 0)
        {
            // Half the others open the GPU's device and mmap its BAR first, so maps may reach device memory.
            ops.Add(new RefOp(RefOpKind.BarOpen, 0, 0, 0, 0));
        }
        while (ops.Count < length)
        {
            ulong k = rng.Next() % 128;
            RefOpKind kind = k switch
            {
                >= 100 => (k - 100) switch
                {
                    < 5 => RefOpKind.UnmapVaddr,
                    < 11 => RefOpKind.MapVaddr,
                    < 12 => RefOpKind.UpdateVaddrExtension,
                    < 15 => RefOpKind.BarOpen,
                    < 18 => RefOpKind.DeviceRelease,
                    < 20 => RefOpKind.DeferredWork,
                    < 24 => RefOpKind.Decode,
                    _ => RefOpKind.Reset,
                },
                < 22 => RefOpKind.Map,
                < 32 => RefOpKind.Unmap,
                < 37 => RefOpKind.UnmapDirty,
                < 40 => RefOpKind.DirtyStart,
                < 41 => RefOpKind.DirtyStop,
                < 46 => RefOpKind.DirtyGet,
                < 52 => RefOpKind.Attach,
                < 56 => RefOpKind.Detach,
                < 59 => RefOpKind.Fork,
                < 61 => RefOpKind.ChildExit,
                < 68 => RefOpKind.Dma,
                < 74 => RefOpKind.MdevAttach,
                < 75 => RefOpKind.MdevDetach,
                < 77 => RefOpKind.GpuAttach,
                < 81 => RefOpKind.GpuDetach,
                < 91 => RefOpKind.Pin,
                < 95 => RefOpKind.Unpin,
                _ => RefOpKind.DmaRw,
            };
            ops.Add(new RefOp(kind, (int)(rng.Next() % 64), (int)(rng.Next() % 64), (int)(rng.Next() % 64), (int)(rng.Next() % 64)));
        }
        return ops;
    }

    /// <summary>Runs one random sequence from <paramref name="seed"/> (TYPE1v2 three times in four, else TYPE1;
    /// <c>strict_mmio_maps</c> on for one seed in four; host frames contiguous for one seed in three, else scattered
    /// in runs of 1 or 4 pages, so the model's extents degenerate as on shattered memory while the reference,
    /// which keeps one entry per page, is unchanged); a discrepancy is shrunk and recorded.</summary>
    public void RunSeed(ulong seed)
    {
        var rng = new SplitMix64(seed);
        bool v2 = rng.Next() % 4 != 0;
        bool strict = seed % 4 == 3;
        int runPages = FrameRunPages[(int)(seed / 4 % (ulong)FrameRunPages.Length)];
        List<RefOp> ops = RandomSequence(ref rng, SequenceLength);
        string? problem = Run(v2, ops, out int failedAt, strict, runPages);
        if (problem is null)
        {
            return;
        }
        List<RefOp> shrunk = Shrink(v2, strict, runPages, ops[..(failedAt + 1)], ref problem);
        Figures.Violations++;
        Violations.Add(new FuzzViolation("differential", profile, seed,
            $"{(v2 ? "TYPE1v2" : "TYPE1")}{(strict ? " strict_mmio_maps" : string.Empty)}{(runPages > 0 ? $" frames scattered in {runPages}-page runs" : string.Empty)} [{string.Join(", ", shrunk)}]: {problem}",
            Replay(v2, strict, runPages, shrunk, seed, problem)));
    }

    /// <summary>Runs <paramref name="ops"/> on a fresh rig and the reference; null when they agree throughout,
    /// else the first discrepancy and the index of its operation. <paramref name="strict"/>: the rig's
    /// <c>strict_mmio_maps</c> (it matters under seeds only). <paramref name="runPages"/>: 0 for contiguous host
    /// frames, else the length of the scattered frame runs.</summary>
    public string? Run(bool v2, IReadOnlyList<RefOp> ops, out int failedAt, bool strict = false, int runPages = 0)
    {
        Figures.Sequences++;
        var run = new Execution(profile, v2, Figures, strict, runPages);
        for (failedAt = 0; failedAt < ops.Count; failedAt++)
        {
            Figures.Operations++;
            string? problem;
            try
            {
                problem = run.Apply(ops[failedAt]);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                problem = $"unhandled {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
            }
            if (problem is not null)
            {
                return $"op {failedAt} {ops[failedAt]}: {problem}";
            }
        }
        failedAt = -1;
        return null;
    }

    // Greedy: drop one operation at a time while the sequence still fails; then try simplifying indices to 0.
    private List<RefOp> Shrink(bool v2, bool strict, int runPages, List<RefOp> ops, ref string problem)
    {
        var scratch = new DifferentialCampaign(profile);
        bool progress = true;
        for (int round = 0; progress && round < 8; round++)
        {
            progress = false;
            for (int i = ops.Count - 2; i >= 0; i--)
            {
                List<RefOp> candidate = [.. ops[..i], .. ops[(i + 1)..]];
                string? p = scratch.Run(v2, candidate, out int at, strict, runPages);
                if (p is not null)
                {
                    ops = candidate[..(at + 1)];
                    problem = p;
                    progress = true;
                }
            }
        }
        return ops;
    }

    private string Replay(bool v2, bool strict, int runPages, List<RefOp> ops, ulong seed, string problem)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"# vfiolab fuzz: differential campaign, profile {profile}, seed {seed}, shrunk to {ops.Count} operations.");
        sb.AppendLine("# The model and the naive reference disagreed at the last operation:");
        foreach (string line in problem.Split('\n').Take(3))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"#   {line}");
        }
        sb.Append(DifferentialRig.ScenarioText(profile, v2, string.Create(CultureInfo.InvariantCulture, $"fuzz-differential-{seed}"), strict, runPages));
        var steps = new Execution(profile, v2, new FuzzFigures(), strict, runPages);
        foreach (RefOp op in ops)
        {
            foreach (string step in steps.AsSteps(op))
            {
                sb.AppendLine(step);
            }
        }
        sb.AppendLine("  - check: { invariants: clean }");
        return sb.ToString();
    }
}
