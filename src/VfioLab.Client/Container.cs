using System.Buffers.Binary;
using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>
/// A VFIO container (<c>/dev/vfio/vfio</c>) seen from user space: the IOMMU context groups join and DMA mappings live
/// in. Works on any <see cref="ISyscallSurface"/> — a simulated process or the real kernel (<c>VfioLab.Linux</c>).
/// Every failing call throws <see cref="VfioException"/> with the kernel's errno; nothing is cached, so the object
/// is as thread-safe as the kernel makes the fd.
/// </summary>
public sealed partial class Container : VfioFile
{
    /// <summary>The VFIO API version this client speaks (<c>VFIO_API_VERSION</c>).</summary>
    public const int ApiVersion = 0;

    private Container(ISyscallSurface sys, int fd)
        : base(sys, fd)
    {
    }

    /// <summary>The IOMMU type this client last set with <see cref="SetIommu"/> or <see cref="SelectIommu"/> (0 before).
    /// The kernel forgets it when the container's last group leaves; this property does not see that.</summary>
    public uint IommuType { get; private set; }

    /// <summary>Opens the container and checks the API version, as every VFIO user does first.</summary>
    /// <param name="sys">The process.</param>
    /// <param name="path">The container device (default <c>/dev/vfio/vfio</c>).</param>
    /// <exception cref="VfioException">open failed (ENOENT: no vfio module), or the kernel speaks another API version.</exception>
    public static Container Open(ISyscallSurface sys, string path = "/dev/vfio/vfio")
    {
        ArgumentNullException.ThrowIfNull(sys);
        int fd = (int)Syscall.Check(sys.Open(path), () => $"open {path}");
        long version = sys.Ioctl(fd, VfioIoctl.GetApiVersion, 0);
        if (version != ApiVersion)
        {
            sys.Close(fd);
            if (version < 0)
            {
                throw new VfioException($"get_api_version fd {fd}", ErrnoExtensions.FromReturn(version));
            }
            throw new VfioException($"get_api_version fd {fd}", Errno.None, $"API version {version}, expected {ApiVersion}");
        }
        return new Container(sys, fd);
    }

    /// <summary><c>VFIO_CHECK_EXTENSION</c>: whether the container (or, once an IOMMU is set, its backend) supports
    /// <paramref name="extension"/> (<see cref="VfioExtension"/>).</summary>
    public bool CheckExtension(uint extension) =>
        Syscall.Ioctl(Sys, Fd, VfioIoctl.CheckExtension, extension, () => $"check_extension fd {Fd} extension {extension}") > 0;

    /// <summary><c>VFIO_SET_IOMMU</c>: selects the IOMMU backend; needs at least one group in the container.</summary>
    public void SetIommu(uint type)
    {
        Syscall.Ioctl(Sys, Fd, VfioIoctl.SetIommu, type, () => $"set_iommu fd {Fd} type {Name(type)}");
        IommuType = type;
    }

    /// <summary>Sets the best IOMMU type the kernel offers, in QEMU's order of preference: TYPE1v2, TYPE1,
    /// sPAPR TCE v2, sPAPR TCE v1. Returns the type set.</summary>
    /// <exception cref="VfioException">None is supported (ENODEV), or SET_IOMMU failed.</exception>
    public uint SelectIommu()
    {
        foreach (uint type in (ReadOnlySpan<uint>)[VfioExtension.Type1v2Iommu, VfioExtension.Type1Iommu, VfioExtension.SpaprTceV2Iommu, VfioExtension.SpaprTceIommu])
        {
            if (CheckExtension(type))
            {
                SetIommu(type);
                return type;
            }
        }
        throw new VfioException($"select_iommu fd {Fd}", Errno.ENODEV, "no supported IOMMU type");
    }

    /// <summary><c>VFIO_IOMMU_GET_INFO</c> (type1) with argsz negotiation and the capability chain decoded
    /// (<see cref="VfioIommuType1InfoReply"/>).</summary>
    /// <exception cref="VfioException">The call failed, or the reply cannot be trusted (a malformed chain, a capability
    /// that does not fit: <see cref="VfioException.Errno"/> None).</exception>
    public IommuInfo GetIommuInfo()
    {
        string Op() => $"iommu_get_info fd {Fd}";
        byte[] buffer = InfoQuery.Run(Sys, Fd, VfioIoctl.IommuGetInfo, VfioIommuType1Info.SizeOf, null, Op);
        var reply = VfioIommuType1InfoReply.Decode(buffer);
        if (reply.Error is { } error)
        {
            throw new VfioException(Op(), Errno.None, error);
        }
        List<IovaWindow> ranges = [.. (reply.IovaRanges ?? []).Select(r => new IovaWindow(r.Start, r.End))];
        MigrationInfo? migration = reply.Migration is { } m ? new MigrationInfo(m.Flags, m.PgsizeBitmap, m.MaxDirtyBitmapSize) : null;
        return new IommuInfo(reply.Info.Flags, reply.Info.IovaPgsizes, ranges, reply.DmaAvail, migration);
    }

    private static string Name(uint type) => VfioExtension.TryGetName(type, out string name) ? name : type.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static byte[] Struct<T>(in T value)
        where T : struct, IAbiStruct<T> => AbiStruct.ToArray(value);

    private static ulong ReadU64(ReadOnlySpan<byte> buffer, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(buffer[offset..]);
}
