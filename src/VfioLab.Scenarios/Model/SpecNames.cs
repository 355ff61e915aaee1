namespace VfioLab.Scenarios.Model;

/// <summary>The scenario spellings of the host and device enumerations, stated once for the parser and for reports.
/// Kernel profiles, quirks and invariants are named by the model itself (<see cref="Lab.KernelProfiles"/>,
/// <see cref="Lab.KernelQuirks"/>, <see cref="Lab.InvariantNames"/>).</summary>
internal static class SpecNames
{
    public static readonly IReadOnlyDictionary<string, IommuHardware> Iommu = new Dictionary<string, IommuHardware>(StringComparer.Ordinal)
    {
        ["vt-d"] = IommuHardware.VtD,
        ["amd-vi"] = IommuHardware.AmdVi,
        ["smmu-v3"] = IommuHardware.SmmuV3,
        ["spapr-tce"] = IommuHardware.SpaprTce,
    };

    public static readonly IReadOnlyDictionary<string, ReservedRegionKind> ReservedRegion = new Dictionary<string, ReservedRegionKind>(StringComparer.Ordinal)
    {
        ["msi"] = ReservedRegionKind.Msi,
        ["direct"] = ReservedRegionKind.Direct,
        ["direct-relaxable"] = ReservedRegionKind.DirectRelaxable,
        ["reserved"] = ReservedRegionKind.Reserved,
        ["sw-msi"] = ReservedRegionKind.SwMsi,
    };

    public static readonly IReadOnlyDictionary<string, DeviceDriverKind> Driver = new Dictionary<string, DeviceDriverKind>(StringComparer.Ordinal)
    {
        ["vfio-pci"] = DeviceDriverKind.VfioPci,
        ["mdev"] = DeviceDriverKind.Mdev,
        ["host"] = DeviceDriverKind.Host,
    };

    public static readonly IReadOnlyDictionary<string, FrameLayoutKind> FrameLayout = new Dictionary<string, FrameLayoutKind>(StringComparer.Ordinal)
    {
        ["contiguous"] = FrameLayoutKind.Contiguous,
        ["scattered"] = FrameLayoutKind.Scattered,
    };

    public static string NameOf<T>(IReadOnlyDictionary<string, T> table, T value)
        where T : struct, Enum
    {
        foreach (KeyValuePair<string, T> pair in table)
        {
            if (EqualityComparer<T>.Default.Equals(pair.Value, value))
            {
                return pair.Key;
            }
        }
        return value.ToString();
    }
}
