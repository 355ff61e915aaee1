namespace VfioLab.Host;

/// <summary>An open file description (struct file): the driver's operations and a reference count held
/// by every fd (in any process, after fork) and every VMA mapping it; the last put calls Release.</summary>
/// <remarks>Thread-safe through Interlocked on <c>_refs</c>; <see cref="Path"/> and
/// <see cref="Operations"/> never change.</remarks>
internal sealed class OpenFile(string path, IFileOperations operations)
{
    private int _refs = 1;

    /// <summary>The path it was opened by.</summary>
    public string Path { get; } = path;

    /// <summary>The driver's callbacks (f_op).</summary>
    public IFileOperations Operations { get; } = operations;

    /// <summary>Current references (f_count).</summary>
    public int RefCount => Volatile.Read(ref _refs);

    /// <summary>Whether Release has run.</summary>
    public bool IsReleased => RefCount == 0;

    /// <summary>get_file: adds a reference to a live file.</summary>
    public void Get()
    {
        if (Interlocked.Increment(ref _refs) <= 1)
        {
            HostThrowHelper.ThrowInvalidOperation($"get_file on released file {Path}");
        }
    }

    /// <summary>get_file_rcu: adds a reference unless the file is already released (its count reached 0), for a
    /// lookup that holds no lock against the last put (<see cref="FdTable.TryGet"/>).</summary>
    public bool TryGet()
    {
        int r = Volatile.Read(ref _refs);
        while (r > 0)
        {
            int seen = Interlocked.CompareExchange(ref _refs, r + 1, r);
            if (seen == r)
            {
                return true;
            }
            r = seen;
        }
        return false;
    }

    /// <summary>fput: drops a reference; the last one calls <see cref="IFileOperations.Release"/>.</summary>
    public void Put()
    {
        int r = Interlocked.Decrement(ref _refs);
        if (r < 0)
        {
            HostThrowHelper.ThrowInvalidOperation($"fput underflow on {Path}");
        }
        if (r == 0)
        {
            Operations.Release();
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"file {Path} (refs {RefCount})";
}
