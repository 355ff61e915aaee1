using VfioLab.Checks;
using VfioLab.Diagnostics;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Checks;

/// <summary>States Linux reaches that the spec's invariants (type1.md §4) rule out, so the checker reports
/// them by design; each is documented in Checks/README.md.</summary>
public sealed class Type1InvariantLimitsTests
{
    [Fact]
    public void Check_AttachToCompatibleDomainFailed_ReportsGroupAttachedOnce()
    {
        var t = new Type1TestHost();
        (int c, _) = t.Container();
        // The NIC's group attaches to its new domain (1st call), then fails to move to the GPU's compatible
        // domain (2nd) and stays in the new one, as vfio_iommu_type1_attach_group falls back.
        t.Machine.Faults.Arm(2, FaultSite.IommuAttachGroup);

        t.AddGroup(c, Type1TestHost.NicGroup);

        Assert.NotSame(t.DomainOf(Type1TestHost.GpuGroup), t.DomainOf(Type1TestHost.NicGroup));
        Assert.All(new InvariantChecker(t.Host).Check(), v => Assert.Equal("group-attached-once", v.Invariant));
        Assert.Contains(new InvariantChecker(t.Host).Check(), v => v.Message.Contains("share ops and coherency", StringComparison.Ordinal));
    }
}
