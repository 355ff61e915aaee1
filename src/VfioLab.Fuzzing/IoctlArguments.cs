using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;
using VfioLab.Lab;

namespace VfioLab.Fuzzing;

/// <summary>
/// Makes one ioctl call for the campaign from a seed: an fd of the rig (or a closed or nonsense fd), a
/// request code (the fd kind's own, any VFIO code, or an unknown one), and an argument — a buffer
/// built from a plausible struct for the request and then mutated (argsz from 0 to large, random flags,
/// addresses near 0 and 2^64, misaligned values, pointers into unmapped, read-only and PFNMAP memory,
/// truncation, extension), or an integer (a small value, a pointer to the same struct written into the
/// process's memory, a pointer into memory that faults, or 64 random bits).
/// </summary>
internal static class IoctlArguments
{
    private const ulong KiB = 1UL << 10;
    private const ulong MiB = 1UL << 20;

    /// <summary>Addresses, IOVAs and sizes where the model's arithmetic and checks have edges.</summary>
    public static readonly ulong[] Interesting =
    [
        0, 1, 0x7ff, 0x800, 0xfff, 0x1000, 0x1001, 0x10000, 0x100000, 0x200000, 0x400000, 0x1000000, 2 * MiB, 4 * MiB, 64 * KiB,
        FuzzRig.Ram, FuzzRig.Ram + 0x1000, FuzzRig.Ram + 2 * MiB, FuzzRig.Huge, FuzzRig.ReadOnly, FuzzRig.Mmio, FuzzRig.Hole, FuzzRig.Scratch,
        0x8000000, 0xfee00000, 0x1_0000_0000, LabProcess.TaskSize - 8, LabProcess.TaskSize, 1UL << 48, 1UL << 63,
        ulong.MaxValue, ulong.MaxValue - 0xfff, ulong.MaxValue - 0xffff, ulong.MaxValue - (2 * MiB) + 1, uint.MaxValue, int.MaxValue,
    ];

    /// <summary>Request codes a kind of fd answers, then every VFIO code, then codes nothing answers.</summary>
    private static readonly uint[] ContainerRequests =
        [VfioIoctl.GetApiVersion, VfioIoctl.CheckExtension, VfioIoctl.SetIommu, VfioIoctl.IommuGetInfo, VfioIoctl.IommuMapDma,
         VfioIoctl.IommuUnmapDma, VfioIoctl.IommuEnable, VfioIoctl.IommuDisable, VfioIoctl.IommuDirtyPages];

    private static readonly uint[] GroupRequests =
        [VfioIoctl.GroupGetStatus, VfioIoctl.GroupSetContainer, VfioIoctl.GroupUnsetContainer, VfioIoctl.GroupGetDeviceFd];

    private static readonly uint[] DeviceRequests =
        [VfioIoctl.DeviceGetInfo, VfioIoctl.DeviceGetRegionInfo, VfioIoctl.DeviceGetIrqInfo, VfioIoctl.DeviceSetIrqs, VfioIoctl.DeviceReset,
         VfioIoctl.DeviceGetPciHotResetInfo, VfioIoctl.DevicePciHotReset, VfioIoctl.DeviceQueryGfxPlane, VfioIoctl.DeviceGetGfxDmabuf,
         VfioIoctl.DeviceIoeventfd, VfioIoctl.DeviceFeature];

    private static readonly uint[] Unknown = [0, 0x3B00, 0x3B63, 0x3B7A, 0x3B7F, 0x3B80, 0x3BFF, 0xC0203B71, 0x80083B65, uint.MaxValue, 0x5401];

    private static readonly string[] DeviceNames =
        ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0", FuzzRig.MdevUuid, "", "0000:01:00.1", "../../etc", "0000:01:00.0 "];

    /// <summary>Pointers an integer argument may carry that do not hold a struct.</summary>
    private static readonly ulong[] BadPointers =
        [0, 8, FuzzRig.ReadOnly, FuzzRig.Mmio, FuzzRig.Hole, LabProcess.TaskSize - 8, ulong.MaxValue - 7, FuzzRig.Ram + 2 * MiB - 4, FuzzRig.Scratch + 1];

    /// <summary>One call: the fd, its kind, the request, and either a buffer or an integer.</summary>
    public static FuzzCall Next(ref SplitMix64 rng)
    {
        int pick = (int)(rng.Next() % 100);
        (int fd, string kind) = pick switch
        {
            < 92 => FuzzRig.Fds[(int)(rng.Next() % (ulong)FuzzRig.Fds.Count)],
            < 96 => (FuzzRig.Fds[^1].Fd + 1 + (int)(rng.Next() % 4), "fd-closed"),
            _ => ((int)(rng.Next() % 3) switch { 0 => 1024, 1 => 1023, _ => int.MaxValue }, "fd-invalid"),
        };
        uint request = Request(ref rng, kind);
        byte[] template = Template(ref rng, request, kind);
        int form = (int)(rng.Next() % 100);
        if (form < 62)
        {
            return new FuzzCall(fd, kind, request, Mutate(ref rng, template), null);
        }
        if (form < 80)
        {
            // The same struct passed by pointer: written into process memory first.
            return new FuzzCall(fd, kind, request, Mutate(ref rng, template), FuzzRig.Scratch);
        }
        ulong value = (int)(rng.Next() % 4) switch
        {
            0 => rng.Next() % 16,
            1 => BadPointers[rng.Next() % (ulong)BadPointers.Length],
            2 => Interesting[rng.Next() % (ulong)Interesting.Length],
            _ => rng.Next(),
        };
        return new FuzzCall(fd, kind, request, null, value);
    }

    private static uint Request(ref SplitMix64 rng, string kind)
    {
        int pick = (int)(rng.Next() % 100);
        if (pick < 75)
        {
            uint[] own = kind.StartsWith("container", StringComparison.Ordinal) ? ContainerRequests
                : kind.StartsWith("group", StringComparison.Ordinal) ? GroupRequests
                : kind.StartsWith("device", StringComparison.Ordinal) ? DeviceRequests
                : ContainerRequests;
            return own[rng.Next() % (ulong)own.Length];
        }
        if (pick < 92)
        {
            return 0x3B64 + (uint)(rng.Next() % 0x16);
        }
        return rng.Next() % 4 == 0 ? (uint)rng.Next() : Unknown[rng.Next() % (ulong)Unknown.Length];
    }

    // A plausible argument for the request on this kind of fd: what a well-behaved client would pass.
    private static byte[] Template(ref SplitMix64 rng, uint request, string kind)
    {
        bool container = kind.StartsWith("container", StringComparison.Ordinal);
        bool group = kind.StartsWith("group", StringComparison.Ordinal);
        if (group && request == VfioIoctl.GroupSetContainer)
        {
            // Any fd from stdin to the first closed one past the rig's.
            return Words(4, (ulong)(rng.Next() % (ulong)(FuzzRig.Fds[^1].Fd + 2)));
        }
        if (group && request == VfioIoctl.GroupGetDeviceFd)
        {
            byte[] name = Encoding.ASCII.GetBytes(DeviceNames[rng.Next() % (ulong)DeviceNames.Length]);
            byte[] b = new byte[name.Length + (rng.Next() % 8 == 0 ? 0 : 1)];
            name.CopyTo(b, 0);
            return b;
        }
        if (group && request == VfioIoctl.GroupGetStatus)
        {
            return Header(8, 0, 8);
        }
        if (container)
        {
            switch (request)
            {
                case VfioIoctl.IommuGetInfo:
                    uint argsz = (uint)(rng.Next() % 3) switch { 0 => 24, 1 => 16, _ => 256 };
                    return Header((int)argsz, argsz, 0);
                case VfioIoctl.IommuMapDma:
                    return Struct(32, 32, (uint)(1 + rng.Next() % 3), Pick(ref rng, Vaddrs), Pick(ref rng, Iovas), Pick(ref rng, Sizes));
                case VfioIoctl.IommuUnmapDma:
                    {
                        uint flags = (uint)(rng.Next() % 4) switch { 0 => 0, 1 => 2, 2 => 1, _ => 4 };
                        ulong size = Pick(ref rng, Sizes);
                        return flags == 1
                            ? Struct(48, 48, flags, Pick(ref rng, Iovas), size, 64 * KiB, 64, Pick(ref rng, BitmapPointers))
                            : Struct(24, 24, flags, flags == 2 ? 0 : Pick(ref rng, Iovas), flags == 2 ? 0 : size);
                    }
                case VfioIoctl.IommuDirtyPages:
                    {
                        uint flags = (uint)(1 << (int)(rng.Next() % 3));
                        return flags == 4
                            ? Struct(48, 48, flags, Pick(ref rng, Iovas), Pick(ref rng, Sizes), 64 * KiB, 64, Pick(ref rng, BitmapPointers))
                            : Header(8, 8, flags);
                    }
            }
        }
        if (kind.StartsWith("device", StringComparison.Ordinal))
        {
            switch (request)
            {
                case VfioIoctl.DeviceGetInfo:
                    return Header(24, 24, 0);
                case VfioIoctl.DeviceGetRegionInfo:
                    return Struct32(32, 32, 0, (uint)(rng.Next() % 10), 0);
                case VfioIoctl.DeviceGetIrqInfo:
                    return Struct32(16, 16, 0, (uint)(rng.Next() % 6), 0);
                case VfioIoctl.DeviceSetIrqs:
                    return Struct32(20, 20, (uint)(rng.Next() % 64), (uint)(rng.Next() % 6), 0, 1);
                case VfioIoctl.DeviceGetPciHotResetInfo or VfioIoctl.DeviceFeature:
                    return Header(16, 16, (uint)(rng.Next() % 8));
            }
        }
        return Header((int)(rng.Next() % 64), (uint)(rng.Next() % 64), (uint)(rng.Next() % 8));
    }

    private static readonly ulong[] Vaddrs =
        [FuzzRig.Ram, FuzzRig.Ram + 6 * MiB, FuzzRig.Huge, FuzzRig.ReadOnly, FuzzRig.Mmio, FuzzRig.Hole, FuzzRig.Ram + 0x1000, 0, LabProcess.TaskSize - 64 * KiB];

    private static readonly ulong[] Iovas =
        [0, 0x100000, 0x400000, 0x800000, 0x1000000, 0x2000000, 0x8000000, 0xfee00000, 0x10000, 0x110000, 1UL << 48, ulong.MaxValue - 64 * KiB + 1, 0x1000];

    private static readonly ulong[] Sizes = [64 * KiB, 0x1000, 2 * MiB, 4 * MiB, 1 * MiB, 0, 128 * KiB, ulong.MaxValue, 1UL << 63];

    private static readonly ulong[] BitmapPointers = [FuzzRig.Ram + 0x7f0000, FuzzRig.ReadOnly, FuzzRig.Hole, FuzzRig.Mmio, LabProcess.TaskSize, 0];

    private static ulong Pick(ref SplitMix64 rng, ulong[] from) =>
        rng.Next() % 8 == 0 ? Interesting[rng.Next() % (ulong)Interesting.Length] : from[rng.Next() % (ulong)from.Length];

    // One to three of: a u32 or u64 field set to an interesting value or random bits, a bit flipped,
    // argsz set to an edge, the buffer cut short or grown with random bytes. Half the buffers go out as
    // the template left them.
    private static byte[] Mutate(ref SplitMix64 rng, byte[] template)
    {
        byte[] b = template;
        if (rng.Next() % 2 == 0)
        {
            return b;
        }
        int n = 1 + (int)(rng.Next() % 3);
        for (int i = 0; i < n; i++)
        {
            switch (rng.Next() % 6)
            {
                case 0 when b.Length >= 8:
                    {
                        int at = (int)(rng.Next() % (ulong)(b.Length / 8)) * 8;
                        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), rng.Next() % 2 == 0 ? Interesting[rng.Next() % (ulong)Interesting.Length] : rng.Next());
                        break;
                    }
                case 1 when b.Length >= 4:
                    {
                        int at = (int)(rng.Next() % (ulong)(b.Length / 4)) * 4;
                        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), (uint)rng.Next());
                        break;
                    }
                case 2 when b.Length > 0:
                    b[rng.Next() % (ulong)b.Length] ^= (byte)(1 << (int)(rng.Next() % 8));
                    break;
                case 3 when b.Length >= 4:
                    uint[] edges = [0, 1, 7, 8, 15, 23, 24, 31, 32, 47, 48, 104, 4096, 0x10000, uint.MaxValue, int.MaxValue];
                    BinaryPrimitives.WriteUInt32LittleEndian(b, edges[rng.Next() % (ulong)edges.Length]);
                    break;
                case 4 when b.Length > 0:
                    b = b[..(int)(rng.Next() % (ulong)b.Length)];
                    break;
                default:
                    {
                        byte[] longer = new byte[b.Length + 1 + (int)(rng.Next() % (rng.Next() % 16 == 0 ? 8192UL : 64UL))];
                        b.CopyTo(longer, 0);
                        for (int k = b.Length; k < longer.Length; k++)
                        {
                            longer[k] = (byte)rng.Next();
                        }
                        b = longer;
                        break;
                    }
            }
        }
        return b;
    }

    private static byte[] Header(int length, uint argsz, uint flags)
    {
        byte[] b = new byte[Math.Max(length, 0)];
        if (b.Length >= 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b, argsz);
        }
        if (b.Length >= 8)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), flags);
        }
        return b;
    }

    // argsz and flags, then u64 fields.
    private static byte[] Struct(int length, uint argsz, uint flags, params ulong[] fields)
    {
        byte[] b = Header(length, argsz, flags);
        for (int i = 0; i < fields.Length && 8 + (i * 8) + 8 <= b.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8 + (i * 8)), fields[i]);
        }
        return b;
    }

    // argsz and flags, then u32 fields.
    private static byte[] Struct32(int length, uint argsz, uint flags, params uint[] fields)
    {
        byte[] b = Header(length, argsz, flags);
        for (int i = 0; i < fields.Length && 8 + (i * 4) + 4 <= b.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8 + (i * 4)), fields[i]);
        }
        return b;
    }

    private static byte[] Words(int length, ulong value)
    {
        byte[] b = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)value);
        return b;
    }
}
