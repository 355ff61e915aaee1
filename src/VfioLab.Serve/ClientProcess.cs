using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Serve;

/// <summary>A real client process and the simulated process that mirrors it: its address space as
/// <c>/proc/PID/smaps</c> shows it, mapped at the same addresses in the simulated process.</summary>
internal sealed class ClientProcess
{
    private const ulong MmapMinAddr = 0x10000;
    private readonly Dictionary<ulong, RealMapping> _mirrored = [];
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

    /// <summary>The pidfd the server watches for this process's exit, or -1.</summary>
    public int Pidfd { get; set; } = -1;

    public bool Exited { get; set; }

    /// <summary>How many mappings the mirror holds now.</summary>
    public int MirroredCount => _mirrored.Count;

    /// <summary>Device-region mappings the model placed (MMAP_COMMIT): the mirror leaves these ranges alone.</summary>
    public List<KeyValuePair<ulong, ulong>> DeviceMappings => _deviceMappings;

    /// <summary>Whether the mirror has a mapping covering <paramref name="address"/>.</summary>
    public bool Knows(ulong address)
    {
        foreach (RealMapping m in _mirrored.Values)
        {
            if (address >= m.Start && address < m.End)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Copies the inherited mirror of a forked parent (the simulated child got the parent's mappings).</summary>
    public void InheritMirror(ClientProcess parent)
    {
        foreach (KeyValuePair<ulong, RealMapping> m in parent._mirrored)
        {
            _mirrored[m.Key] = m.Value;
        }
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
        var now = new Dictionary<ulong, RealMapping>();
        foreach (RealMapping m in ProcFiles.ParseSmaps(text))
        {
            if (m.Start >= MmapMinAddr && m.End <= LabProcess.TaskSize && m.End > m.Start && !OverlapsDevice(m.Start, m.End))
            {
                now[m.Start] = m;
            }
        }
        List<string>? problems = null;
        foreach (KeyValuePair<ulong, RealMapping> old in _mirrored.ToArray())
        {
            if (!now.TryGetValue(old.Key, out RealMapping same) || same != old.Value)
            {
                Lab.Syscalls.Munmap(old.Value.Start, old.Value.End - old.Value.Start);
                _mirrored.Remove(old.Key);
            }
        }
        foreach (RealMapping m in now.Values)
        {
            if (_mirrored.ContainsKey(m.Start))
            {
                continue;
            }
            long r = Lab.Syscalls.Mmap(m.Start, m.End - m.Start, Protection(m), Flags(m), -1, 0);
            if (r < 0)
            {
                (problems ??= []).Add($"{m.Start:x}-{m.End:x} {m.Kind}: the model refused it ({ErrnoExtensions.FromReturn(r)})");
                continue;
            }
            _mirrored[m.Start] = m;
        }
        return problems is null ? null : string.Join("; ", problems);
    }

    private bool OverlapsDevice(ulong start, ulong end)
    {
        foreach ((ulong a, ulong len) in _deviceMappings)
        {
            if (start < a + len && a < end)
            {
                return true;
            }
        }
        return false;
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
