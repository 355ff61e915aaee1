using System.Globalization;

namespace VfioLab.Serve;

/// <summary>One mapping of a real process as <c>/proc/PID/smaps</c> shows it.</summary>
/// <param name="Start">First byte.</param>
/// <param name="End">One past the last byte.</param>
/// <param name="Read">Readable.</param>
/// <param name="Write">Writable.</param>
/// <param name="Exec">Executable.</param>
/// <param name="Shared">MAP_SHARED (<c>s</c>) rather than private (<c>p</c>).</param>
/// <param name="Inode">The backing file's inode, 0 for anonymous memory.</param>
/// <param name="Path">The path column (<c>[heap]</c>, a file, <c>/memfd:x (deleted)</c>), empty for anonymous memory.</param>
/// <param name="PageSize">KernelPageSize in bytes: 4 KiB, or 2 MiB / 1 GiB for hugetlb.</param>
internal readonly record struct RealMapping(ulong Start, ulong End, bool Read, bool Write, bool Exec, bool Shared, ulong Inode, string Path, ulong PageSize)
{
    public bool IsHugeTlb => PageSize > 4096;

    public string Kind => IsHugeTlb ? $"hugetlb-{(PageSize >= 1UL << 30 ? "1g" : "2m")}" : Shared ? (Inode == 0 ? "shared" : "shared-file") : Inode == 0 ? "anonymous" : "file";
}

/// <summary>Readers of the <c>/proc</c> files the mirror is built from.</summary>
internal static class ProcFiles
{
    /// <summary>Parses <c>/proc/PID/smaps</c> text (header lines plus fields; only KernelPageSize is used).</summary>
    public static List<RealMapping> ParseSmaps(string text)
    {
        var list = new List<RealMapping>();
        RealMapping? current = null;
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.TrimEnd();
            if (line.Length == 0)
            {
                continue;
            }
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash > 0 && space > dash && IsHex(line.AsSpan(0, dash)))
            {
                if (current is { } done)
                {
                    list.Add(done);
                }
                current = ParseHeader(line);
                continue;
            }
            if (current is { } c && line.StartsWith("KernelPageSize:", StringComparison.Ordinal))
            {
                string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 2 && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong kb))
                {
                    current = c with { PageSize = kb * 1024 };
                }
            }
        }
        if (current is { } last)
        {
            list.Add(last);
        }
        return list;
    }

    private static bool IsHex(ReadOnlySpan<char> s)
    {
        foreach (char ch in s)
        {
            if (!char.IsAsciiHexDigit(ch))
            {
                return false;
            }
        }
        return s.Length > 0;
    }

    private static RealMapping ParseHeader(string line)
    {
        // start-end perms offset dev inode [path]
        string[] f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        int dash = f[0].IndexOf('-', StringComparison.Ordinal);
        ulong start = ulong.Parse(f[0].AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        ulong end = ulong.Parse(f[0].AsSpan(dash + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        string perms = f.Length > 1 ? f[1] : "----";
        ulong inode = f.Length > 4 && ulong.TryParse(f[4], NumberStyles.None, CultureInfo.InvariantCulture, out ulong i) ? i : 0;
        string path = f.Length > 5 ? f[5].Trim() : "";
        return new RealMapping(start, end, perms[0] == 'r', perms[1] == 'w', perms[2] == 'x', perms[3] == 's', inode, path, 4096);
    }

    /// <summary>The soft RLIMIT_MEMLOCK in <c>/proc/PID/limits</c> text; <see cref="ulong.MaxValue"/> for unlimited.</summary>
    public static ulong? ParseMemlock(string limits)
    {
        foreach (string line in limits.Split('\n'))
        {
            if (!line.StartsWith("Max locked memory", StringComparison.Ordinal))
            {
                continue;
            }
            string[] parts = line["Max locked memory".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0)
            {
                return null;
            }
            return parts[0] == "unlimited" ? ulong.MaxValue
                : ulong.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ulong v) ? v : null;
        }
        return null;
    }

    /// <summary>Whether <c>CapEff</c> in <c>/proc/PID/status</c> text has CAP_IPC_LOCK (bit 14).</summary>
    public static bool ParseCapIpcLock(string status) => ParseStatusHex(status, "CapEff:") is { } caps && (caps & (1UL << 14)) != 0;

    /// <summary>The parent pid (<c>PPid</c>) in <c>/proc/PID/status</c> text.</summary>
    public static int? ParseParent(string status)
    {
        foreach (string line in status.Split('\n'))
        {
            if (line.StartsWith("PPid:", StringComparison.Ordinal) &&
                int.TryParse(line.AsSpan(5).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int ppid))
            {
                return ppid;
            }
        }
        return null;
    }

    private static ulong? ParseStatusHex(string status, string key)
    {
        foreach (string line in status.Split('\n'))
        {
            if (line.StartsWith(key, StringComparison.Ordinal) &&
                ulong.TryParse(line.AsSpan(key.Length).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong v))
            {
                return v;
            }
        }
        return null;
    }

    /// <summary>The inode of a <c>socket:[INODE]</c> link target, or null for any other file.</summary>
    public static ulong? SocketInode(string? linkTarget) =>
        linkTarget is not null && linkTarget.StartsWith("socket:[", StringComparison.Ordinal) && linkTarget.EndsWith(']') &&
        ulong.TryParse(linkTarget.AsSpan(8, linkTarget.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode)
            ? inode : null;

    /// <summary>readlink of <c>/proc/PID/fd/FD</c>: null when the fd is not open (or the process is gone).</summary>
    public static string? FdTarget(int pid, int fd)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Whether the process is exiting or gone: <c>/proc/PID/stat</c> unreadable, its state a zombie (Z) or dead (X),
    /// or PF_EXITING (0x4) in its flags (the ninth field), which the kernel sets before it drops the process's memory
    /// and then its files.
    /// </summary>
    public static bool IsExiting(int pid) => ParseExiting(TryRead($"/proc/{pid}/stat"));

    /// <summary>See <see cref="IsExiting"/>; <paramref name="stat"/> is the text of <c>/proc/PID/stat</c> or null.</summary>
    public static bool ParseExiting(string? stat)
    {
        int close = stat?.LastIndexOf(')') ?? -1;
        if (stat is null || close < 0)
        {
            return true;
        }
        string[] fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        const uint PfExiting = 0x4;
        return fields.Length < 7 || fields[0] is "Z" or "X" or "x"
            || (uint.TryParse(fields[6], NumberStyles.None, CultureInfo.InvariantCulture, out uint flags) && (flags & PfExiting) != 0);
    }

    /// <summary>The text of a /proc file, or null when it cannot be read (the process is gone).</summary>
    public static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
