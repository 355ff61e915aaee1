using VfioLab.Abi;

namespace VfioLab.Diagnostics;

/// <summary>
/// The refusal slot of the calling thread, as <c>current</c> is the kernel's: the check that refuses a call records why
/// (<see cref="Refuse"/>, one call where it returns its errno) and the system-call entry reads it when the call returns
/// an error (<see cref="Take"/>), for the trace, <c>LabProcess.LastRefusal</c> and the scenario runner. A call on a
/// thread runs to completion on that thread, so a thread-static slot needs no lock and no plumbing through the layers.
/// </summary>
/// <remarks>Cost: nothing on a success path but <see cref="Begin"/> (one thread-static store per system call); a
/// refusal stores its numbers, and its sentence is formatted only when read (<see cref="Refusal.Reason"/>). The last
/// refusal recorded during a call wins: an outer check that turns an inner errno into another records its own.</remarks>
internal static class Refusals
{
    [ThreadStatic]
    private static Refusal _slot;

    /// <summary>Starts a call: forgets whatever an earlier call on this thread recorded. Cleared only when set: every
    /// system call starts here, and most record nothing, so reading the slot's errno is cheaper than storing an empty
    /// 80-byte refusal, references and all, into thread-local storage each time (issue 16's 4 KiB pair).</summary>
    public static void Begin()
    {
        ref Refusal slot = ref _slot;
        if (slot.IsSet)
        {
            slot = default;
        }
    }

    /// <summary>Records why a check refused and returns its <paramref name="errno"/>, so a check site reads
    /// <c>return Refusals.Refuse(Errno.EINVAL, "vfio_dma_do_map", "size 0x{0:x} ...", size);</c>.</summary>
    /// <param name="errno">The errno the check returns.</param>
    /// <param name="check">The kernel function that refuses, as Linux names it.</param>
    /// <param name="format">The reason as a composite format: <c>{0}</c>..<c>{3}</c> are <paramref name="a"/>..<paramref name="d"/>,
    /// <c>{4}</c> is <paramref name="text"/>.</param>
    /// <param name="a">The first value.</param>
    /// <param name="b">The second value.</param>
    /// <param name="c">The third value.</param>
    /// <param name="d">The fourth value.</param>
    /// <param name="text">A name among the values.</param>
    /// <param name="source">The profile switch, quirk or commit the refusal depends on, or null.</param>
    public static Errno Refuse(Errno errno, string check, string format, ulong a = 0, ulong b = 0, ulong c = 0, ulong d = 0,
        string? text = null, string? source = null)
    {
        _slot = new Refusal(errno, check, source, format, a, b, c, d, text);
        return errno;
    }

    /// <summary><see cref="Refuse"/> as a system call's return value (<c>-errno</c>).</summary>
    public static long RefuseReturn(Errno errno, string check, string format, ulong a = 0, ulong b = 0, ulong c = 0, ulong d = 0,
        string? text = null, string? source = null) =>
        Refuse(errno, check, format, a, b, c, d, text, source).AsReturn();

    /// <summary>The refusal recorded since <see cref="Begin"/> when it explains <paramref name="errno"/>, else none
    /// (<see cref="Refusal.IsSet"/> false): a refusal recorded for another errno (an inner check whose errno an outer
    /// one replaced without saying why) explains nothing.</summary>
    public static Refusal Take(Errno errno)
    {
        Refusal r = _slot;
        return errno != Errno.None && r.Errno == errno ? r : default;
    }

    /// <summary>The refusal recorded since <see cref="Begin"/>, whatever its errno (for a caller that knows the errno
    /// is the one recorded).</summary>
    public static Refusal Current => _slot;
}
