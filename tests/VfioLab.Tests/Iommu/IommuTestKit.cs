using VfioLab.Diagnostics;
using VfioLab.Iommu;

namespace VfioLab.Tests.Iommu;

/// <summary>Builders shared by the Iommu tests: a domain on a profile with a given bitmap.</summary>
internal static class IommuTestKit
{
    public const ulong K4 = 1UL << 12;
    public const ulong K64 = 1UL << 16;
    public const ulong M2 = 1UL << 21;
    public const ulong G1 = 1UL << 30;
    public const ulong T1 = 1UL << 40;

    public static IommuDomain Domain(IommuHardwareProfile profile, FaultInjector? faults = null)
    {
        var unit = new IommuUnit(0, profile, faults);
        Assert.Equal(VfioLab.Abi.Errno.None, unit.TryAllocateDomain(out IommuDomain? d));
        return d!;
    }

    public static IommuDomain Domain(ulong bitmap, FaultInjector? faults = null) =>
        Domain(IommuHardwareProfile.VtD.WithOverrides(pgsizeBitmap: bitmap), faults);

    public static void AssertClean(IommuDomain d) => Assert.Empty(d.CheckInvariants());
}
