using VfioLab.Addressing;

namespace VfioLab.Host;

/// <summary>A physically contiguous run of host frames <c>[First, First + Count)</c>; what one
/// allocation, one GUP batch entry or one iommu_map call covers.</summary>
internal readonly record struct PfnRun(Pfn First, ulong Count)
{
    /// <summary>The last frame of the run.</summary>
    public Pfn Last => First.Plus(Count - 1);

    /// <summary>Joins each run with the ones after it that continue it physically, in place; returns how many runs
    /// are left at the start of <paramref name="runs"/>.</summary>
    public static int JoinAdjacent(Span<PfnRun> runs)
    {
        if (runs.IsEmpty)
        {
            return 0;
        }
        int joined = 0;
        for (int i = 1; i < runs.Length; i++)
        {
            PfnRun last = runs[joined];
            if (last.First.Value + last.Count == runs[i].First.Value)
            {
                runs[joined] = last with { Count = last.Count + runs[i].Count };
            }
            else
            {
                runs[++joined] = runs[i];
            }
        }
        return joined + 1;
    }

    /// <inheritdoc />
    public override string ToString() => $"[0x{First.Value:x}, +0x{Count:x}]";
}
