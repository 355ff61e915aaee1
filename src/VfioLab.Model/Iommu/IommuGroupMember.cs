using VfioLab.Pci;

namespace VfioLab.Iommu;

/// <summary>Which kind of driver a group member is bound to, as far as group ownership cares
/// (<c>dev-&gt;driver</c>; SCENARIOS.md <c>driver:</c>).</summary>
internal enum DriverBinding
{
    /// <summary>No driver bound.</summary>
    None,

    /// <summary>vfio-pci (or another VFIO bus driver): user-space ownership.</summary>
    Vfio,

    /// <summary>A mediated-device vendor driver (emulated IOMMU).</summary>
    Mdev,

    /// <summary>An ordinary kernel driver: it uses the default domain, so the group cannot be claimed by VFIO.</summary>
    Host,
}

/// <summary>
/// One device in an <see cref="IommuGroup"/>: a PCI function (by address) or a mediated device (by
/// UUID), with its current driver binding (a <c>struct device</c> in <c>group-&gt;devices</c>).
/// </summary>
/// <remarks>The binding is changed only through <see cref="IommuGroup.BindDriver"/>, under the group's lock.</remarks>
internal sealed class IommuGroupMember
{
    /// <summary>A PCI function member.</summary>
    public IommuGroupMember(PciFunction function, DriverBinding binding)
    {
        Function = function;
        Name = function.Address.ToString();
        Binding = binding;
    }

    /// <summary>A mediated device member, named by its UUID.</summary>
    public IommuGroupMember(Guid mdevUuid, DriverBinding binding = DriverBinding.Mdev)
    {
        MdevUuid = mdevUuid;
        Name = mdevUuid.ToString();
        Binding = binding;
    }

    /// <summary>The Linux device name: PCI address (<c>0000:01:00.0</c>) or mdev UUID.</summary>
    public string Name { get; }

    /// <summary>The PCI function, for a PCI member.</summary>
    public PciFunction? Function { get; }

    /// <summary>The UUID, for a mediated device.</summary>
    public Guid? MdevUuid { get; }

    /// <summary>The bound driver kind.</summary>
    public DriverBinding Binding { get; internal set; }

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Binding})";
}
