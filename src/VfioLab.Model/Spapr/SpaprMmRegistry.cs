using VfioLab.Host;

namespace VfioLab.Spapr;

/// <summary>
/// The per-mm state the sPAPR backend keeps outside any container, as the kernel keeps it in
/// <c>mm-&gt;context</c>: each mm's <see cref="MmIommuContext"/> (pre-registered regions, shared by all of
/// the mm's containers) and the <c>locked_vm</c> pages the backend charged and can never give back (the
/// charge <c>tce_iommu_create_table</c> leaves behind when the platform refuses the table). One per driver.
/// </summary>
/// <remarks>Lock: <c>_lock</c> (a leaf lock) protects both dictionaries; contexts lock themselves.</remarks>
internal sealed class SpaprMmRegistry
{
    private readonly object _lock = new();
    private readonly Dictionary<AddressSpace, MmIommuContext> _contexts = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<AddressSpace, ulong> _leaked = new(ReferenceEqualityComparer.Instance);

    /// <summary>The context of <paramref name="mm"/>, created empty on first use.</summary>
    public MmIommuContext Of(AddressSpace mm)
    {
        lock (_lock)
        {
            if (!_contexts.TryGetValue(mm, out MmIommuContext? c))
            {
                c = new MmIommuContext(mm, _contexts.Count + 1);
                _contexts.Add(mm, c);
            }
            return c;
        }
    }

    /// <summary>The id of <paramref name="mm"/>'s context, or null when it has none (no context is created).</summary>
    public int? IdOf(AddressSpace mm)
    {
        lock (_lock)
        {
            return _contexts.TryGetValue(mm, out MmIommuContext? c) ? c.Id : null;
        }
    }

    /// <summary>Every context created so far.</summary>
    public List<MmIommuContext> Contexts
    {
        get { lock (_lock) { return [.. _contexts.Values]; } }
    }

    /// <summary>The context whose <see cref="MmIommuContext.Id"/> is <paramref name="id"/>, or null.</summary>
    public MmIommuContext? ById(int id)
    {
        lock (_lock)
        {
            foreach (MmIommuContext c in _contexts.Values)
            {
                if (c.Id == id)
                {
                    return c;
                }
            }
            return null;
        }
    }

    /// <summary>Records <paramref name="pages"/> charged to <paramref name="mm"/> that no one will un-charge.</summary>
    public void AddLeak(AddressSpace mm, ulong pages)
    {
        lock (_lock)
        {
            _leaked[mm] = _leaked.GetValueOrDefault(mm) + pages;
        }
    }

    /// <summary>Pages charged to each mm and never to be un-charged.</summary>
    public List<KeyValuePair<AddressSpace, ulong>> Leaks
    {
        get { lock (_lock) { return [.. _leaked]; } }
    }
}
