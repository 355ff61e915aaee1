using System.Globalization;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Fuzzing;

/// <summary>
/// The ioctl campaign: from a seed, builds the <see cref="FuzzRig"/> and issues a run of random and mutated
/// ioctls (<see cref="IoctlArguments"/>) on every fd kind. Each call must answer with a result or a defined
/// errno and never an exception; a call that fails must leave the host's digest (<see cref="LabHost.Digest"/>) exactly as before
/// (except the two failures Linux does not roll back: UNMAP_DMA and DIRTY_PAGES ending in EFAULT after
/// some mappings were already unmapped or reported, spec type1.md §1.1, §1.6, §4.16); and the invariant
/// checker must stay clean after every call. The first violation ends the seed's run and is recorded with
/// a scenario file replaying every call up to it.
/// </summary>
internal sealed class IoctlCampaign(string profile)
{
    /// <summary>Calls per seed; the rig is rebuilt for every seed so calls keep meeting a rich state.</summary>
    public const int CallsPerSeed = 200;

    /// <summary>What was tried and reached.</summary>
    public FuzzFigures Figures { get; } = new();

    /// <summary>Failing cases found.</summary>
    public List<FuzzViolation> Violations { get; } = [];

    private (string Rig, List<(FuzzCall Call, long Ret)> History, ulong Seed)? _last;

    /// <summary>A scenario file replaying every call of the last seed run, each expecting what it returned.</summary>
    public string ReplayOfLastSeed() =>
        _last is { } l ? Replay(l.Rig, l.History, l.Seed, "nothing: a replay of the whole seed") : throw new InvalidOperationException("no seed has run");

    /// <summary>Runs <paramref name="calls"/> calls from <paramref name="seed"/> on a fresh rig.</summary>
    public void RunSeed(ulong seed, int calls = CallsPerSeed)
    {
        FuzzRig rig = FuzzRig.Build(profile);
        var rng = new SplitMix64(seed);
        var history = new List<(FuzzCall Call, long Ret)>();
        _last = (rig.Scenario, history, seed);
        string before = rig.Host.Digest();
        for (int i = 0; i < calls; i++)
        {
            FuzzCall call = IoctlArguments.Next(ref rng);
            string? problem = null;
            long ret = 0;
            try
            {
                ret = Issue(rig.Process, call, ref before, rig);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                problem = $"unhandled {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
            }
            Figures.Ioctls++;
            string after = rig.Host.Digest();
            if (problem is null)
            {
                problem = Judge(call, ret, before, after, rig.Host);
                // Request codes outside VFIO's range count as one "unknown" path, not one path per random code.
                Figures.Reached(call.Request is >= 0x3B64 and <= 0x3B79 ? $"{call.Kind} 0x{call.Request:x}" : $"{call.Kind} unknown", ret);
            }
            history.Add((call, ret));
            if (problem is not null)
            {
                Figures.Violations++;
                Violations.Add(new FuzzViolation("ioctl", profile, seed,
                    string.Create(CultureInfo.InvariantCulture, $"call {i}: {call} -> {Describe(ret)}: {problem}"), Replay(rig.Scenario, history, seed, problem)));
                return;
            }
            before = after;
        }
    }

    private static long Issue(LabProcess process, FuzzCall call, ref string before, FuzzRig rig)
    {
        if (call.Buffer is null)
        {
            return process.Syscalls.Ioctl(call.Fd, call.Request, call.Value!.Value);
        }
        if (call.Value is ulong at)
        {
            // Writing the argument into process memory changes nothing the digest covers.
            if (process.Syscalls.WriteMemory(at, call.Buffer) != 0)
            {
                throw new InvalidOperationException($"the rig's scratch memory at 0x{at:x} cannot be written");
            }
            before = rig.Host.Digest();
            return process.Syscalls.Ioctl(call.Fd, call.Request, at);
        }
        return process.Syscalls.Ioctl(call.Fd, call.Request, call.Buffer.AsSpan());
    }

    private static string? Judge(FuzzCall call, long ret, string before, string after, LabHost host)
    {
        if (ret < 0 && !Enum.IsDefined((Errno)(int)-ret))
        {
            return $"returned {ret}, not -errno";
        }
        if (ret < 0 && host.LastRefusal?.Errno != (Errno)(int)-ret)
        {
            return $"failed with {Describe(ret)} and no kernel check said why (docs/refusals.md)";
        }
        if (ret < 0 && !LinuxKeepsPartialEffects(call, ret) && !string.Equals(after, before, StringComparison.Ordinal))
        {
            return $"failed with {Describe(ret)} but changed the state: {FirstDifference(before, after)}";
        }
        IReadOnlyList<LabViolation> found = host.CheckInvariants();
        return found.Count == 0 ? null : "invariants broken: " + string.Join("; ", found.Select(v => $"{v.Invariant}: {v.Message}"));
    }

    // The first line of the digest that differs, as "before / after".
    private static string FirstDifference(string before, string after)
    {
        string[] was = before.Split('\n');
        string[] now = after.Split('\n');
        int n = Math.Min(was.Length, now.Length);
        for (int i = 0; i < n; i++)
        {
            if (!string.Equals(was[i], now[i], StringComparison.Ordinal))
            {
                return $"line {i}: before '{was[i]}', after '{now[i]}'";
            }
        }
        return now.Length > n ? $"line {n}: after adds '{now[n]}'" : $"line {n}: after drops '{was[n]}'";
    }

    // UNMAP_DMA and DIRTY_PAGES(GET_BITMAP) on a container may fault copying a bitmap or the header out after
    // removing or reporting mappings; Linux keeps what was done (spec §1.1 copy-back, §1.6 step 10, §4.16).
    private static bool LinuxKeepsPartialEffects(FuzzCall call, long ret) =>
        call.Kind.StartsWith("container", StringComparison.Ordinal) && ErrnoExtensions.FromReturn(ret) == Errno.EFAULT &&
        call.Request is VfioIoctl.IommuUnmapDma or VfioIoctl.IommuDirtyPages;

    private static string Describe(long ret) => ret >= 0 ? ret.ToString(CultureInfo.InvariantCulture) : ErrnoExtensions.FromReturn(ret).ToString();

    private static string Replay(string rig, List<(FuzzCall Call, long Ret)> history, ulong seed, string problem)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"# vfiolab fuzz: ioctl campaign, seed {seed}. The last call broke:");
        foreach (string line in problem.Split('\n').Take(3))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"#   {line}");
        }
        sb.Append(rig.Replace("name: fuzz-rig", string.Create(CultureInfo.InvariantCulture, $"name: fuzz-ioctl-{seed}"), StringComparison.Ordinal));
        foreach ((FuzzCall call, long ret) in history)
        {
            foreach (string step in call.AsSteps(ret >= 0 ? "ok" : ErrnoExtensions.FromReturn(ret).ToString()))
            {
                sb.AppendLine(step);
            }
        }
        sb.AppendLine("  - check: { invariants: clean }");
        return sb.ToString();
    }
}
