namespace VfioLab.Abi;

/// <summary>Flags of <see cref="VfioGroupStatus"/> (<c>VFIO_GROUP_FLAGS_*</c>).</summary>
/// <remarks>Short names (<c>READ</c>, <c>GET_DIRTY_BITMAP</c>) parse and format through <see cref="AbiNames"/>.</remarks>
[Flags]
public enum GroupStatusFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>VIABLE: every device of the group is bound to a vfio driver or otherwise safe; the group may be used.</summary>
    Viable = 1,
    /// <summary>CONTAINER_SET: the group is attached to a container.</summary>
    ContainerSet = 2,
}
