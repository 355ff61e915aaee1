using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Serve;

/// <summary>A real client process and the simulated process that mirrors it: its address space as
/// <c>/proc/PID/smaps</c> shows it, mapped at the same addresses in the simulated process.</summary>
internal sealed class ClientProcess
{
    private const ulong MmapMinAddr = 0x10000;
    private List<RealMapping> _mirrored = [];
    private readonly List<KeyValuePair<ulong, ulong>> _deviceMappings = [];

    public ClientProcess(int pid, LabProcess lab, ClientProcess? parent)
    {
        Pid = pid;
        Lab = lab;
        Parent = parent;
    }

    public int Pid { get; }

    public LabProcess Lab { get; }

    public ClientProcess? Parent { get; }

    /// <summary>Told of every mapping the mirror makes or removes (the recorder), or null.</summary>
    public IMirrorListener? Listener { get; init; }

    /// <summary>The pidfd the server watches for this process's exit, or -1.</summary>
    public int Pidfd { get; set; } = -1;

    public bool Exited { get; set; }

    /// <summary>How many mappings the mirror holds now.</summary>
    public int MirroredCount => _mirrored.Count;

    /// <summary>Device-region mappings the model placed (MMAP_COMMIT): the mirror leaves these ranges alone.</summary>
    public List<KeyValuePair<ulong, ulong>> DeviceMappings => _deviceMappings;

    /// <summary>Copies the inherited mirror of a forked parent (the simulated child got the parent's mappings).</summary>
    public void InheritMirror(ClientProcess parent)
    {
        _mirrored = [.. parent._mirrored];
        _deviceMappings.AddRange(parent._deviceMappings);
    }

    /// <summary>Re-reads the real process's maps and brings the simulated process's mappings in line: mappings gone or
    /// changed are unmapped, new ones mapped at the same address with the same protection and kind.</summary>
    /// <returns>Null, or what could not be mirrored (the process is gone, a mapping the model refused).</returns>
    public string? Refresh()
    {
        string? text = ProcFiles.TryRead($"/proc/{Pid}/smaps");
        if (text is null)
        {
            return $"/proc/{Pid}/smaps is not readable (the process is gone)";
        }
        var now = new List<RealMapping>();
        foreach (RealMapping m in ProcFiles.ParseSmaps(text))
        {
            if (m.Start >= MmapMinAddr && m.End <= LabProcess.TaskSize && m.End > m.Start)
            {
                foreach ((ulong start, ulong end) in OutsideDevices(m.Start, m.End))
                {
                    now.Add(m with { Start = start, End = end });
                }
            }
        }
        now.Sort((a, b) => a.Start.CompareTo(b.Start));
        // Only what changed is touched: the pieces of old mappings no new mapping of the same kind covers are unmapped,
        // the pieces of new mappings no old mapping of the same kind covered are mapped. A heap that grew, or two
        // anonymous mappings the kernel merged, keep their pages (and the pins on them), as in the kernel.
        List<(ulong Start, ulong End, RealMapping Kind)> gone = Uncovered(_mirrored, now);
        List<(ulong Start, ulong End, RealMapping Kind)> added = Uncovered(now, _mirrored);
        List<string>? problems = null;
        foreach ((ulong goneStart, ulong goneEnd, _) in gone)
        {
            // A device mapping the model placed (MMAP_COMMIT) over what the mirror had there is the model's own.
            foreach ((ulong start, ulong end) in OutsideDevices(goneStart, goneEnd))
            {
                Lab.Syscalls.Munmap(start, end - start);
                Listener?.Unmapped(this, start, end);
            }
        }
        foreach ((ulong start, ulong end, RealMapping m) in added)
        {
            long r = Lab.Syscalls.Mmap(start, end - start, Protection(m), Flags(m), -1, 0);
            if (r >= 0)
            {
                Listener?.Mapped(this, start, end, m);
            }
            else
            {
                (problems ??= []).Add($"{start:x}-{end:x} {m.Kind}: the model refused it ({ErrnoExtensions.FromReturn(r)})");
            }
        }
        _mirrored = now;
        return problems is null ? null : string.Join("; ", problems);
    }

    private static bool SameKind(RealMapping a, RealMapping b) =>
        a.Read == b.Read && a.Write == b.Write && a.Exec == b.Exec && a.Shared == b.Shared && a.PageSize == b.PageSize && a.Inode == b.Inode;

    // The pieces of each mapping in `from` that no mapping of the same kind in `by` covers (both sorted and disjoint).
    private static List<(ulong Start, ulong End, RealMapping Kind)> Uncovered(List<RealMapping> from, List<RealMapping> by)
    {
        var pieces = new List<(ulong, ulong, RealMapping)>();
        int j = 0;
        foreach (RealMapping m in from)
        {
            while (j < by.Count && by[j].End <= m.Start)
            {
                j++;
            }
            ulong at = m.Start;
            for (int k = j; k < by.Count && by[k].Start < m.End && at < m.End; k++)
            {
                RealMapping b = by[k];
                if (!SameKind(m, b))
                {
                    continue;
                }
                if (b.Start > at)
                {
                    pieces.Add((at, b.Start, m));
                }
                at = Math.Max(at, b.End);
            }
            if (at < m.End)
            {
                pieces.Add((at, m.End, m));
            }
        }
        return pieces;
    }

    // The pieces of [start, end) outside every device mapping.
    private List<(ulong Start, ulong End)> OutsideDevices(ulong start, ulong end)
    {
        var pieces = new List<(ulong, ulong)> { (start, end) };
        foreach ((ulong a, ulong len) in _deviceMappings)
        {
            var next = new List<(ulong, ulong)>(pieces.Count + 1);
            foreach ((ulong s0, ulong e0) in pieces)
            {
                if (e0 <= a || a + len <= s0)
                {
                    next.Add((s0, e0));
                    continue;
                }
                if (s0 < a)
                {
                    next.Add((s0, a));
                }
                if (a + len < e0)
                {
                    next.Add((a + len, e0));
                }
            }
            pieces = next;
        }
        return pieces;
    }

    private static MemoryProtection Protection(RealMapping m) =>
        (m.Read ? MemoryProtection.Read : 0) | (m.Write ? MemoryProtection.Write : 0) | (m.Exec ? MemoryProtection.Exec : 0);

    private static MmapFlags Flags(RealMapping m)
    {
        MmapFlags f = MmapFlags.Fixed | MmapFlags.Anonymous | (m.Shared ? MmapFlags.Shared : MmapFlags.Private);
        if (m.IsHugeTlb)
        {
            f |= MmapFlags.HugeTlb | (m.PageSize >= 1UL << 30 ? MmapFlags.Huge1GiB : MmapFlags.Huge2MiB);
        }
        return f;
    }

    public override string ToString() => $"pid {Pid} ({Lab.Name})";
}
