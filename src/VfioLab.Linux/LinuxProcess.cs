using System.Globalization;
using System.Runtime.InteropServices;
using VfioLab.Abi;

namespace VfioLab.Linux;

/// <summary>
/// What the real kernel accounts to this process beyond its system calls, as a VFIO user sees it: its locked memory
/// (<c>VmLck</c>, the <c>locked_vm</c> type1 charges pinned pages to), RLIMIT_MEMLOCK, and CAP_IPC_LOCK (which lets
/// type1 pin past the limit).
/// </summary>
/// <remarks>Capabilities are a thread's: <see cref="SetCapIpcLock"/> changes the calling thread's effective set, so it
/// must be the thread that then makes the VFIO calls.</remarks>
public static unsafe class LinuxProcess
{
    private const int CapIpcLock = 14;
    private const uint CapabilityVersion3 = 0x20080522;

    /// <summary>This process's locked memory in bytes: <c>VmLck</c> of /proc/self/status.</summary>
    /// <exception cref="IOException">/proc/self/status has no VmLck line.</exception>
    public static ulong LockedVmBytes()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmLck:", StringComparison.Ordinal))
            {
                string kb = line["VmLck:".Length..].Trim();
                kb = kb.EndsWith(" kB", StringComparison.Ordinal) ? kb[..^3].Trim() : kb;
                return ulong.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        }
        throw new IOException("/proc/self/status has no VmLck line");
    }

    /// <summary>setrlimit(RLIMIT_MEMLOCK) with soft and hard limit <paramref name="bytes"/>
    /// (<see cref="ulong.MaxValue"/>: RLIM_INFINITY): 0 or -errno (raising the hard limit needs CAP_SYS_RESOURCE).</summary>
    public static long SetMemlockLimit(ulong bytes)
    {
        var limit = new LibC.RLimit { Current = bytes, Max = bytes };
        return LibC.SetRlimit(LibC.RlimitMemlock, &limit) < 0 ? LibC.Failed() : 0;
    }

    /// <summary>Raises or drops CAP_IPC_LOCK in the calling thread's effective set (it stays permitted, so it can be
    /// raised again): 0 or -errno.</summary>
    public static long SetCapIpcLock(bool effective)
    {
        (long get, long set) = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => (LibC.SysCapgetX64, LibC.SysCapsetX64),
            Architecture.Arm64 => (LibC.SysCapgetArm64, LibC.SysCapsetArm64),
            _ => (-1L, -1L),
        };
        if (get < 0)
        {
            return Errno.ENOSYS.AsReturn();
        }
        // struct __user_cap_header_struct { u32 version; int pid; } and two struct __user_cap_data_struct
        // { u32 effective, permitted, inheritable; } (version 3: 64 capability bits).
        uint* header = stackalloc uint[2];
        uint* data = stackalloc uint[6];
        header[0] = CapabilityVersion3;
        header[1] = 0;
        if (LibC.Syscall2(get, header, data) < 0)
        {
            return LibC.Failed();
        }
        if (effective)
        {
            data[0] |= 1u << CapIpcLock;
        }
        else
        {
            data[0] &= ~(1u << CapIpcLock);
        }
        header[0] = CapabilityVersion3;
        header[1] = 0;
        return LibC.Syscall2(set, header, data) < 0 ? LibC.Failed() : 0;
    }
}
