namespace VfioLab.Abi;

/// <summary>mmap flags (MAP_*), with Linux x86-64/arm64 values.</summary>
[Flags]
public enum MmapFlags
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>MAP_SHARED: writes are visible to every mapper of the object.</summary>
    Shared = 0x01,
    /// <summary>MAP_PRIVATE: copy-on-write mapping.</summary>
    Private = 0x02,
    /// <summary>MAP_FIXED: place exactly at the given address, replacing what is there.</summary>
    Fixed = 0x10,
    /// <summary>MAP_ANONYMOUS: not backed by a file.</summary>
    Anonymous = 0x20,
    /// <summary>MAP_POPULATE: fault every page in at mmap time.</summary>
    Populate = 0x8000,
    /// <summary>MAP_HUGETLB: back with huge pages; the size is in bits 26..31 (<see cref="Huge2MiB"/>, <see cref="Huge1GiB"/>).</summary>
    HugeTlb = 0x40000,
    /// <summary>MAP_HUGE_2MB: 21 &lt;&lt; MAP_HUGE_SHIFT.</summary>
    Huge2MiB = 21 << 26,
    /// <summary>MAP_HUGE_1GB: 30 &lt;&lt; MAP_HUGE_SHIFT.</summary>
    Huge1GiB = 30 << 26,
}
