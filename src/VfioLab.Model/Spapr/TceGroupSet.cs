using VfioLab.Abi;
using VfioLab.Iommu;
using VfioLab.Vfio;

namespace VfioLab.Spapr;

/// <summary>
/// The groups attached to one sPAPR TCE container (<c>container-&gt;group_list</c> of struct tce_iommu_group), each a PE
/// with its <see cref="TceTableGroup"/>: the container's windows are programmed into every PE
/// (<c>tce_iommu_take_ownership</c>, <c>set_window</c>, <c>unset_window</c>), and the first PE answers GET_INFO and
/// decides what a new window may be.
/// </summary>
/// <remarks>Lock: the container's lock (<see cref="TceContext.Lock"/>) protects <c>_groups</c>; every <c>*Locked</c>
/// member asserts it. A PE's own table state is behind the TCE table's lock, taken after this one.</remarks>
internal sealed class TceGroupSet(TceContext ctx)
{
    private readonly List<TceGroup> _groups = [];

    /// <summary>How many groups are attached.</summary>
    public int CountLocked
    {
        get
        {
            ctx.AssertLocked();
            return _groups.Count;
        }
    }

    /// <summary>The first attached group's PE (the container has at least one group).</summary>
    public TceTableGroup FirstLocked
    {
        get
        {
            ctx.AssertLocked();
            return _groups[0].TableGroup;
        }
    }

    /// <summary>Whether <paramref name="group"/> is attached.</summary>
    public bool ContainsLocked(VfioGroup group)
    {
        ctx.AssertLocked();
        return _groups.Exists(g => ReferenceEquals(g.Group, group));
    }

    /// <summary>The attached VFIO groups, in attach order (a copy).</summary>
    public List<VfioGroup> GroupsLocked()
    {
        ctx.AssertLocked();
        return _groups.ConvertAll(g => g.Group);
    }

    /// <summary><c>tce_iommu_take_ownership</c>, then the group joins: the PE is taken from the platform and every window
    /// in <paramref name="tables"/> is programmed into it; on a failure the windows are unset, the PE given back and the
    /// platform's error returned.</summary>
    public Errno AttachLocked(VfioGroup group, TceTableGroup tg, IReadOnlyList<TceTable?> tables)
    {
        ctx.AssertLocked();
        tg.TakeOwnership();
        for (int n = 0; n < tables.Count; n++)
        {
            if (tables[n] is { } t)
            {
                Errno e = tg.SetWindow(n, t);
                if (e != Errno.None)
                {
                    for (int k = 0; k < tables.Count; k++)
                    {
                        tg.UnsetWindow(k);
                    }
                    tg.ReleaseOwnership();
                    return e;
                }
            }
        }
        _groups.Add(new TceGroup(group, tg));
        return Errno.None;
    }

    /// <summary><c>tce_iommu_detach_group</c>'s PE half: the group leaves, the windows in <paramref name="tables"/> are
    /// unset from its PE and the platform takes the PE back. False when the group is not attached.</summary>
    public bool DetachLocked(VfioGroup group, IReadOnlyList<TceTable?> tables)
    {
        ctx.AssertLocked();
        int i = _groups.FindIndex(g => ReferenceEquals(g.Group, group));
        if (i < 0)
        {
            return false;
        }
        TceTableGroup tg = _groups[i].TableGroup;
        _groups.RemoveAt(i);
        for (int n = 0; n < tables.Count; n++)
        {
            if (tables[n] is not null)
            {
                tg.UnsetWindow(n);
            }
        }
        tg.ReleaseOwnership();
        return true;
    }

    /// <summary>A new window goes into every PE (<c>set_window</c>); on a failure it is unset from all of them and
    /// the platform's error returned.</summary>
    public Errno SetWindowLocked(int num, TceTable table)
    {
        ctx.AssertLocked();
        foreach (TceGroup g in _groups)
        {
            Errno e = g.TableGroup.SetWindow(num, table);
            if (e != Errno.None)
            {
                UnsetWindowLocked(num);
                return e;
            }
        }
        return Errno.None;
    }

    /// <summary>A window leaves every PE (<c>unset_window</c>).</summary>
    public void UnsetWindowLocked(int num)
    {
        ctx.AssertLocked();
        foreach (TceGroup g in _groups)
        {
            g.TableGroup.UnsetWindow(num);
        }
    }

    /// <summary>The attached groups' numbers, for the snapshot.</summary>
    public List<int> NumbersLocked()
    {
        ctx.AssertLocked();
        return _groups.ConvertAll(g => g.Group.Number);
    }

    /// <summary>One attached group (struct tce_iommu_group) with its PE.</summary>
    private sealed record TceGroup(VfioGroup Group, TceTableGroup TableGroup);
}
