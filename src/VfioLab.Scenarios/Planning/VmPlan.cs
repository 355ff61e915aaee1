namespace VfioLab.Scenarios.Planning;

/// <summary>
/// A VM as an operator describes it for sizing (<c>vfiolab plan</c>, docs/planning.md): its machine type, RAM and
/// what backs it, its devices, whether it has a vIOMMU, a virtio-mem device, and the host it runs on (IOMMU,
/// page size, kernel profile, <c>dma_entry_limit</c>). <see cref="Planner"/> turns it into the map sequence QEMU
/// issues and runs that on the model.
/// </summary>
public sealed record VmPlan
{
    /// <summary>The VM's name (used for the scenario the planner emits).</summary>
    public string Name { get; init; } = "vm";

    /// <summary>The machine type (default q35).</summary>
    public MachineType Machine { get; init; } = MachineType.Q35;

    /// <summary>Guest RAM in bytes (boot memory, without virtio-mem), a multiple of the backing's page size.</summary>
    public ulong RamBytes { get; init; } = 4UL << 30;

    /// <summary>What backs guest RAM (default: transparent huge pages).</summary>
    public RamBacking Backing { get; init; } = RamBacking.Thp;

    /// <summary>The devices, in the order QEMU realizes them.</summary>
    public IReadOnlyList<PlannedDevice> Devices { get; init; } = [];

    /// <summary>A vIOMMU (intel-iommu, virtio-iommu, smmuv3): each device gets an address space, hence a container,
    /// of its own. The plan assumes the guest maps all of RAM for each device (passthrough mode, iommu=pt), the
    /// footprint libvirt provisions for.</summary>
    public bool VIommu { get; init; }

    /// <summary>A virtio-mem device, or null.</summary>
    public VirtioMemPlan? VirtioMem { get; init; }

    /// <summary>The host IOMMU: <c>vt-d</c> (default), <c>amd-vi</c> or <c>smmu-v3</c>.</summary>
    public string HostIommu { get; init; } = "vt-d";

    /// <summary>The host PAGE_SIZE: 4 KiB (default), 16 KiB or 64 KiB.</summary>
    public ulong HostPageSize { get; init; } = 4096;

    /// <summary>The kernel profile (<see cref="Lab.KernelProfiles"/>).</summary>
    public string Kernel { get; init; } = Lab.KernelProfiles.Seeds;

    /// <summary>The type1 module parameter <c>dma_entry_limit</c> of the host (default 65535).</summary>
    public ulong DmaEntryLimit { get; init; } = 65535;

    /// <summary>Parses a VM description (docs/planning.md): a <c>vm:</c> map (name, machine, memory, backing, viommu,
    /// devices, virtio_mem) and an optional <c>host:</c> map (iommu, page_size, kernel, dma_entry_limit).</summary>
    /// <param name="text">The description, as YAML.</param>
    /// <param name="file">The name used in messages.</param>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> or <paramref name="file"/> is null.</exception>
    /// <exception cref="ScenarioParseException">The text is malformed or describes a VM that cannot be planned
    /// (<see cref="Planner.Validate"/>), located at the problem.</exception>
    public static VmPlan Parse(string text, string file)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(file);
        return VmPlanReader.Read(text, file);
    }

    /// <summary>Reads a size as scenario files and VM descriptions write it: an integer, <c>0x</c> hex, or a number
    /// with <c>KiB</c>, <c>MiB</c>, <c>GiB</c> or <c>TiB</c> (for command-line options that take sizes).</summary>
    /// <param name="text">The text.</param>
    /// <param name="bytes">The size, when it reads.</param>
    /// <param name="error">Why it does not, or null.</param>
    /// <returns>Whether <paramref name="text"/> is a size.</returns>
    public static bool TryParseSize(string text, out ulong bytes, out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Model.ScalarSyntax.TryParseSize(text, out bytes, out error);
    }

    /// <summary>Reads and parses a VM description file, as strict UTF-8.</summary>
    /// <param name="path">The file; also the name used in messages.</param>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    /// <exception cref="ScenarioParseException">The file cannot be read or is not a plannable VM description.</exception>
    public static VmPlan Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return VmPlanReader.ReadFile(path);
    }
}
