using VfioLab.Diagnostics;

namespace VfioLab.Vfio;

/// <summary>
/// The VFIO core of one simulated host (the module state of drivers/vfio/vfio_main.c, group.c and
/// container.c): registered IOMMU backends, VFIO groups by number, and their devices.
/// </summary>
/// <remarks>
/// Lock: <c>_gate</c> (vfio.group_lock) protects the group table and the container id counter.
/// The backend registry is fixed at construction.
/// </remarks>
internal sealed class VfioSubsystem
{
    private readonly object _gate = new();
    private readonly SortedDictionary<int, VfioGroup> _groups = [];
    private readonly List<VfioContainer> _containers = [];
    private int _nextContainerId;

    public VfioSubsystem(IReadOnlyList<IVfioIommuDriver> iommuDrivers, TraceLog trace)
    {
        IommuDrivers = iommuDrivers;
        Trace = trace;
    }

    /// <summary>Registered IOMMU backends, in registration order (the order CHECK_EXTENSION polls them).</summary>
    public IReadOnlyList<IVfioIommuDriver> IommuDrivers { get; }

    /// <summary>The host's trace.</summary>
    public TraceLog Trace { get; }

    /// <summary>Every VFIO group, by number.</summary>
    public IReadOnlyCollection<VfioGroup> Groups
    {
        get
        {
            lock (_gate)
            {
                return [.. _groups.Values];
            }
        }
    }

    /// <summary>Every container ever opened that still has a group or an open fd.</summary>
    public IReadOnlyList<VfioContainer> Containers
    {
        get
        {
            lock (_gate)
            {
                return [.. _containers];
            }
        }
    }

    /// <summary>The group <c>/dev/vfio/N</c>, if it exists.</summary>
    public VfioGroup? FindGroup(int number)
    {
        lock (_gate)
        {
            return _groups.GetValueOrDefault(number);
        }
    }

    /// <summary>Adds a group (a device of it was bound to a VFIO driver).</summary>
    public void AddGroup(VfioGroup group)
    {
        lock (_gate)
        {
            _groups.Add(group.Number, group);
        }
    }

    /// <summary>A new container, for an open of <c>/dev/vfio/vfio</c>.</summary>
    public VfioContainer CreateContainer()
    {
        lock (_gate)
        {
            var c = new VfioContainer(this, ++_nextContainerId);
            _containers.Add(c);
            return c;
        }
    }

    /// <summary>Forgets a container whose fd closed and which holds no group.</summary>
    public void ForgetContainer(VfioContainer container)
    {
        lock (_gate)
        {
            _containers.Remove(container);
        }
    }
}
