namespace VfioLab.Fuzzing;

/// <summary>What a campaign tried and reached: sequences and operations of the property campaign, ioctls of the
/// fuzz campaign, scenario files mutated, violations found, and the distinct error paths reached (an fd kind or
/// operation, a request, an errno).</summary>
public sealed class FuzzFigures
{
    private readonly HashSet<string> _errnoPaths = new(StringComparer.Ordinal);
    private readonly HashSet<string> _okPaths = new(StringComparer.Ordinal);

    internal FuzzFigures()
    {
    }

    /// <summary>Operation sequences run against the model and the reference.</summary>
    public long Sequences { get; internal set; }

    /// <summary>Operations in those sequences.</summary>
    public long Operations { get; internal set; }

    /// <summary>ioctls issued by the fuzz campaign.</summary>
    public long Ioctls { get; internal set; }

    /// <summary>Mutated scenario files parsed.</summary>
    public long ScenarioFiles { get; internal set; }

    /// <summary>Violations found (must be 0).</summary>
    public long Violations { get; internal set; }

    /// <summary>Distinct (where, request, errno) paths that ended in an errno.</summary>
    public int ErrnoPaths => _errnoPaths.Count;

    /// <summary>Distinct (where, request) paths that succeeded.</summary>
    public int SuccessPaths => _okPaths.Count;

    /// <summary>The errno paths reached, sorted: <c>WHERE REQUEST ERRNO</c>.</summary>
    public IEnumerable<string> ErrnoPathNames => _errnoPaths.Order(StringComparer.Ordinal);

    /// <summary>The success paths reached, sorted: <c>WHERE REQUEST</c>.</summary>
    public IEnumerable<string> SuccessPathNames => _okPaths.Order(StringComparer.Ordinal);

    /// <summary>Records the outcome of one call at <paramref name="path"/>: a non-negative result or -errno.</summary>
    internal void Reached(string path, long result)
    {
        if (result >= 0)
        {
            _okPaths.Add(path);
        }
        else
        {
            _errnoPaths.Add($"{path} {Abi.ErrnoExtensions.FromReturn(result)}");
        }
    }

    /// <summary>Adds another campaign's figures to these.</summary>
    internal void Add(FuzzFigures other)
    {
        Sequences += other.Sequences;
        Operations += other.Operations;
        Ioctls += other.Ioctls;
        ScenarioFiles += other.ScenarioFiles;
        Violations += other.Violations;
        _errnoPaths.UnionWith(other._errnoPaths);
        _okPaths.UnionWith(other._okPaths);
    }

    /// <summary>Every figure in one line.</summary>
    public override string ToString() =>
        $"{Sequences} sequences ({Operations} operations), {Ioctls} ioctls, {ScenarioFiles} scenario files, {Violations} violations, " +
        $"{ErrnoPaths} distinct errno paths, {SuccessPaths} success paths";
}
