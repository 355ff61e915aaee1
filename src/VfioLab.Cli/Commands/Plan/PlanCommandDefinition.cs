using System.CommandLine;

namespace VfioLab.Cli.Commands.Plan;

/// <summary>Arguments and options of <c>vfiolab plan</c>, and the combinations it refuses.</summary>
internal static class PlanCommandDefinition
{
    public static Command Create(CliConsole console)
    {
        var file = new Argument<string?>("vm")
        {
            Arity = ArgumentArity.ZeroOrOne,
            HelpName = "FILE",
            Description = "A VM description (docs/planning.md); the options below override what it says.",
        };
        OptionLikeArguments.Refuse(file, pathsAllowed: true);
        var machine = new Option<string>("--machine") { HelpName = "q35|pc|virt", Description = "The QEMU machine type (default q35)." };
        var memory = new Option<string>("--memory") { HelpName = "SIZE", Description = "Guest RAM (16GiB)." };
        var backing = new Option<string>("--backing") { HelpName = "4k|thp|hugetlb-2m|hugetlb-1g|memfd", Description = "What backs guest RAM (default thp)." };
        var device = new Option<string[]>("--device")
        {
            HelpName = "NAME:BAR[,BAR...]",
            Description = "A passthrough device with its memory BAR sizes (gpu0:16MiB,32GiB); repeatable; replaces the file's devices.",
            AllowMultipleArgumentsPerToken = false,
        };
        var mdev = new Option<string[]>("--mdev")
        {
            HelpName = "NAME:PINNED",
            Description = "A mediated device (vGPU) whose vendor driver pins PINNED of guest RAM (vgpu0:256MiB); repeatable.",
        };
        var viommu = new Option<bool>("--viommu") { Description = "The VM has a vIOMMU: a container per device, each mapping all of RAM (guest in passthrough mode)." };
        var virtioMem = new Option<string>("--virtio-mem") { HelpName = "SIZE:BLOCK:PLUGGED", Description = "A virtio-mem device: region, block size, plugged memory (64GiB:2MiB:32GiB)." };
        var hostIommu = new Option<string>("--host-iommu") { HelpName = "vt-d|amd-vi|smmu-v3", Description = "The host IOMMU (default vt-d; smmu-v3 for virt)." };
        var pageSize = new Option<string>("--host-page-size") { HelpName = "SIZE", Description = "The host PAGE_SIZE (4KiB, 16KiB, 64KiB)." };
        var kernel = new Option<string>("--kernel") { HelpName = "PROFILE", Description = "The kernel profile (default seeds)." };
        var memlock = new Option<string>("--memlock") { HelpName = "SIZE", Description = "Judge this RLIMIT_MEMLOCK: exit 1, saying by how much, when it is too small." };
        var dmaLimit = new Option<string>("--dma-entry-limit") { HelpName = "N", Description = "The host's dma_entry_limit: exit 1, saying by how much, when a container needs more." };
        var json = new Option<bool>("--json") { Description = "Write the plan as one JSON document (docs/schemas/plan-output.schema.json)." };
        var emit = new Option<bool>("--emit-scenario") { Description = "Print the scenario of the VM's map sequence (vfiolab run can run it) instead of planning." };
        var html = new Option<string>("--html") { HelpName = "FILE", Description = "Also write a self-contained HTML report of the model's run (docs/report.md)." };
        var command = new Command("plan", "Size a VM for VFIO: RLIMIT_MEMLOCK, DMA entries against dma_entry_limit, IOPTEs and IOMMU page-table memory,\n"
            + "each with its rule, checked by running QEMU's map sequence on the model, and compared with libvirt's limit.\n"
            + "Exit 0 when the limits given suffice; 1 when one is too small or the model disagrees; 2 when the description is malformed.")
        {
            file, machine, memory, backing, device, mdev, viommu, virtioMem, hostIommu, pageSize, kernel, memlock, dmaLimit, json, emit, html,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(emit) && (result.GetValue(json) || result.GetValue(html) is not null || result.GetValue(memlock) is not null))
            {
                result.AddError("--emit-scenario prints the scenario and plans nothing: it takes no --json, --html or --memlock");
            }
            if (result.GetValue(html) is "" or "-")
            {
                result.AddError("--html needs a file name");
            }
            if (result.GetValue(file) is null && result.GetValue(memory) is null)
            {
                result.AddError("describe the VM: a FILE, or at least --memory and a --device or --mdev");
            }
        });
        command.SetAction(parse => new PlanCommand(console).Execute(new PlanSettings
        {
            File = parse.GetValue(file),
            Machine = parse.GetValue(machine),
            Memory = parse.GetValue(memory),
            Backing = parse.GetValue(backing),
            Devices = parse.GetValue(device) ?? [],
            Mdevs = parse.GetValue(mdev) ?? [],
            VIommu = parse.GetValue(viommu),
            VirtioMem = parse.GetValue(virtioMem),
            HostIommu = parse.GetValue(hostIommu),
            HostPageSize = parse.GetValue(pageSize),
            Kernel = parse.GetValue(kernel),
            Memlock = parse.GetValue(memlock),
            DmaEntryLimit = parse.GetValue(dmaLimit),
            Json = parse.GetValue(json),
            EmitScenario = parse.GetValue(emit),
            HtmlPath = parse.GetValue(html),
        }));
        return command;
    }
}
