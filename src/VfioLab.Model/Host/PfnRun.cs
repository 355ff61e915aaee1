using VfioLab.Addressing;

namespace VfioLab.Host;

/// <summary>A physically contiguous run of host frames <c>[First, First + Count)</c>; what one
/// allocation, one GUP batch entry or one iommu_map call covers.</summary>
internal readonly record struct PfnRun(Pfn First, ulong Count)
{
    /// <summary>The last frame of the run.</summary>
    public Pfn Last => First.Plus(Count - 1);

    /// <inheritdoc />
    public override string ToString() => $"[0x{First.Value:x}, +0x{Count:x}]";
}
