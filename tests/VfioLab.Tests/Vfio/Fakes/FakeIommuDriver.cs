using VfioLab.Abi;
using VfioLab.Vfio;

namespace VfioLab.Tests.Vfio.Fakes;

/// <summary>
/// A test IOMMU backend (struct vfio_iommu_driver_ops) that answers CHECK_EXTENSION for the IOMMU
/// types it serves the way type1 does, opens one <see cref="FakeIommu"/> per SET_IOMMU and keeps
/// every state it ever opened, so tests can count what is still outstanding. Failures are armed
/// by position (the n-th attach from now), never keyed on argument values.
/// </summary>
internal sealed class FakeIommuDriver : IVfioIommuDriver
{
    private readonly List<FakeIommu> _states = [];
    private int _failAttachCountdown;
    private Errno _failAttachErrno;

    /// <summary>A backend serving <paramref name="types"/>; type1 (TYPE1 and TYPE1v2) when none are given.</summary>
    public FakeIommuDriver(string name = "fake-type1", bool servesNoIommu = false, params uint[] types)
    {
        Name = name;
        ServesNoIommu = servesNoIommu;
        Types = types.Length == 0 ? [VfioExtension.Type1Iommu, VfioExtension.Type1v2Iommu] : types;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public bool ServesNoIommu { get; }

    /// <summary>The IOMMU types <see cref="Open"/> accepts.</summary>
    public IReadOnlyList<uint> Types { get; }

    /// <summary>Whether the backend behaves as type1 for the non-type extensions (UNMAP_ALL, UPDATE_VADDR, DMA_CC).</summary>
    public bool IsType1Like => Types.Contains(VfioExtension.Type1Iommu);

    /// <summary>The error the next opens return (<see cref="Errno.None"/>: open succeeds).</summary>
    public Errno OpenError { get; set; }

    /// <summary>Number of ops->open calls, failed or not.</summary>
    public int OpenCalls { get; private set; }

    /// <summary>Number of attach_group calls over every state, failed or not.</summary>
    public int AttachCalls { get; private set; }

    /// <summary>Every state opened, in order.</summary>
    public IReadOnlyList<FakeIommu> States => _states;

    /// <summary>States not yet released.</summary>
    public int LiveStates => _states.Count(s => s.ReleaseCount == 0);

    /// <summary>The most recently opened state.</summary>
    public FakeIommu Last => _states[^1];

    /// <summary>Arms a one-shot failure: the <paramref name="nth"/> attach_group call from now (1-based,
    /// over every state of this backend) fails with <paramref name="errno"/> and changes nothing.</summary>
    public void FailAttach(int nth, Errno errno)
    {
        _failAttachCountdown = nth;
        _failAttachErrno = errno;
    }

    /// <inheritdoc />
    /// <remarks>With no state, as type1's probe with a null iommu: each served type and (type1) UNMAP_ALL
    /// answer 1; UPDATE_VADDR and DMA_CC need state and answer 0.</remarks>
    public long CheckExtension(ulong extension) => CheckExtension(extension, null);

    /// <inheritdoc />
    public Errno Open(ulong type, VfioContainer container, out IVfioIommu? state)
    {
        OpenCalls++;
        state = null;
        if (OpenError != Errno.None)
        {
            return OpenError;
        }
        if (type > uint.MaxValue || !Types.Contains((uint)type))
        {
            return Errno.EINVAL;
        }
        var created = new FakeIommu(this, (uint)type, container);
        _states.Add(created);
        state = created;
        return Errno.None;
    }

    /// <summary>The answer of CHECK_EXTENSION, with <paramref name="state"/> when the container has one.</summary>
    internal long CheckExtension(ulong extension, FakeIommu? state)
    {
        if (extension <= uint.MaxValue && Types.Contains((uint)extension))
        {
            return 1;
        }
        if (!IsType1Like)
        {
            return 0;
        }
        return extension switch
        {
            VfioExtension.UnmapAll => 1,
            VfioExtension.UpdateVaddr => state is not null && !state.HasEmulatedGroup ? 1 : 0,
            VfioExtension.DmaCcIommu => state is not null ? 1 : 0,
            _ => 0,
        };
    }

    /// <summary>Counts an attach and reports whether the armed failure fires on it.</summary>
    internal Errno NextAttachResult()
    {
        AttachCalls++;
        if (_failAttachCountdown > 0 && --_failAttachCountdown == 0)
        {
            return _failAttachErrno;
        }
        return Errno.None;
    }
}
