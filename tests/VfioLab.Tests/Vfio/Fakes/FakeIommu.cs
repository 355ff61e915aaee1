using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Fakes;

/// <summary>
/// One container's state in <see cref="FakeIommuDriver"/> (the <c>iommu_data</c> of a backend): the
/// attached groups and registered devices as real lists, call counts, and the container ioctls it
/// received. It answers IOMMU_GET_INFO with flags and page sizes only and ENOTTY for anything else.
/// A detach or unregister of something not attached is a bug in the core and throws.
/// </summary>
internal sealed class FakeIommu(FakeIommuDriver driver, uint type, VfioContainer container) : IVfioIommu
{
    /// <summary>The page sizes GET_INFO reports: every power of two from 4 KiB (type1's PAGE_MASK).</summary>
    public const ulong PageSizes = ~0xfffUL;

    private readonly List<VfioGroup> _attached = [];
    private readonly List<VfioDevice> _registered = [];
    private readonly List<uint> _ioctls = [];

    /// <summary>The backend that opened the state.</summary>
    public FakeIommuDriver Driver { get; } = driver;

    /// <summary>The IOMMU type SET_IOMMU asked for.</summary>
    public uint Type { get; } = type;

    /// <summary>The container the state was opened for.</summary>
    public VfioContainer Container { get; } = container;

    /// <summary>Groups attached now, in attach order.</summary>
    public IReadOnlyList<VfioGroup> Attached => _attached;

    /// <summary>Devices registered now (pinning devices while open).</summary>
    public IReadOnlyList<VfioDevice> Registered => _registered;

    /// <summary>Container ioctl requests passed through, in order.</summary>
    public IReadOnlyList<uint> Ioctls => _ioctls;

    /// <summary>Successful attach_group calls.</summary>
    public int AttachCount { get; private set; }

    /// <summary>detach_group calls.</summary>
    public int DetachCount { get; private set; }

    /// <summary>register_device calls.</summary>
    public int RegisterCount { get; private set; }

    /// <summary>unregister_device calls.</summary>
    public int UnregisterCount { get; private set; }

    /// <summary>release calls (must end at 1).</summary>
    public int ReleaseCount { get; private set; }

    /// <summary>Groups still attached when release ran (must be 0).</summary>
    public int AttachedAtRelease { get; private set; } = -1;

    /// <summary>Groups attached plus devices registered.</summary>
    public int Outstanding => _attached.Count + _registered.Count;

    /// <summary>Whether a mediated device's (emulated IOMMU) group is attached.</summary>
    public bool HasEmulatedGroup => _attached.Exists(g => g.Type == VfioGroupType.EmulatedIommu);

    /// <inheritdoc />
    public long CheckExtension(ulong extension) => Driver.CheckExtension(extension, this);

    /// <inheritdoc />
    public long Ioctl(VfioCallContext context, uint request, ref IoctlArgument argument)
    {
        _ioctls.Add(request);
        return request == VfioIoctl.IommuGetInfo ? GetInfo(ref argument) : Errno.ENOTTY.AsReturn();
    }

    /// <inheritdoc />
    public Errno AttachGroup(VfioGroup group, VfioLab.Host.Process? current)
    {
        if (_attached.Contains(group))
        {
            throw new InvalidOperationException($"group {group.Number} attached twice");
        }
        Errno e = Driver.NextAttachResult();
        if (e != Errno.None)
        {
            return e;
        }
        _attached.Add(group);
        AttachCount++;
        return Errno.None;
    }

    /// <inheritdoc />
    public void DetachGroup(VfioGroup group)
    {
        if (!_attached.Remove(group))
        {
            throw new InvalidOperationException($"group {group.Number} detached but not attached");
        }
        DetachCount++;
    }

    /// <inheritdoc />
    public void Release()
    {
        ReleaseCount++;
        AttachedAtRelease = _attached.Count;
    }

    /// <inheritdoc />
    public void RegisterDevice(VfioDevice device)
    {
        if (_registered.Contains(device))
        {
            throw new InvalidOperationException($"device {device.Name} registered twice");
        }
        _registered.Add(device);
        RegisterCount++;
    }

    /// <inheritdoc />
    public void UnregisterDevice(VfioDevice device)
    {
        if (!_registered.Remove(device))
        {
            throw new InvalidOperationException($"device {device.Name} unregistered but not registered");
        }
        UnregisterCount++;
    }

    // VFIO_IOMMU_GET_INFO without capabilities: minsz 16, argsz < 16 is EINVAL, min(argsz, 24) copied back.
    private static long GetInfo(ref IoctlArgument argument)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1Info.SizeOf];
        if (!argument.TryCopyFrom(0, buf[..16]))
        {
            return Errno.EFAULT.AsReturn();
        }
        uint argsz = BinaryPrimitives.ReadUInt32LittleEndian(buf);
        if (argsz < 16)
        {
            return Errno.EINVAL.AsReturn();
        }
        BinaryPrimitives.WriteUInt32LittleEndian(buf[4..], (uint)IommuInfoFlags.Pgsizes);
        BinaryPrimitives.WriteUInt64LittleEndian(buf[8..], PageSizes);
        int length = (int)Math.Min(argsz, (uint)VfioIommuType1Info.SizeOf);
        return argument.TryCopyTo(0, buf[..length]) ? 0 : Errno.EFAULT.AsReturn();
    }
}
