using System.CommandLine;

namespace VfioLab.Cli.Commands.Import;

/// <summary>Arguments and options of <c>vfiolab import qemu-trace</c>.</summary>
internal static class ImportCommandDefinition
{
    public static Command Create(CliConsole console)
    {
        var log = new Argument<string>("log")
        {
            HelpName = "LOG",
            Description = "QEMU's vfio trace: -trace 'vfio_*' (log backend, with or without PID@SECONDS:), simpletrace.py's output, or a log with QEMU's vfio_dma_map error reports.",
        };
        OptionLikeArguments.Refuse(log, pathsAllowed: true);
        var output = new Option<string>("--output", "-o") { HelpName = "FILE.yaml", Description = "The scenario to write (- for standard output); written whole or not at all.", Required = true };
        var name = new Option<string>("--name") { HelpName = "NAME", Description = "The scenario's name (default: qemu-trace-LOG)." };
        var memory = new Option<string>("--memory") { HelpName = "SIZE", Description = "Host RAM (default: what the trace maps from, plus 1 GiB)." };
        var pageSize = new Option<string>("--page-size") { HelpName = "SIZE", Description = "The host PAGE_SIZE: 4KiB, 16KiB or 64KiB (default 4KiB)." };
        var iommu = new Option<string>("--iommu") { HelpName = "vt-d|amd-vi|smmu-v3", Description = "The host IOMMU profile (default vt-d)." };
        var iommuPages = new Option<string[]>("--iommu-page-size") { HelpName = "SIZE", Description = "An IOMMU page size, overriding the profile's bitmap; repeatable." };
        var aperture = new Option<int?>("--aperture-bits") { HelpName = "N", Description = "The IOMMU's address width: IOVAs from 2^N up are outside it (39 on many consumer Intel parts)." };
        var kernel = new Option<string>("--kernel") { HelpName = "PROFILE", Description = "The kernel profile (default seeds)." };
        var dmaLimit = new Option<string>("--dma-entry-limit") { HelpName = "N", Description = "type1's dma_entry_limit (default 65535)." };
        var memlock = new Option<string>("--memlock") { HelpName = "SIZE|unlimited", Description = "QEMU's RLIMIT_MEMLOCK (default unlimited)." };
        var device = new Option<string>("--device") { HelpName = "DDDD:BB:DD.F", Description = "The device's PCI address (default: the traced vfio_attach_device's, else 0000:01:00.0)." };
        var group = new Option<int?>("--group") { HelpName = "N", Description = "The device's IOMMU group (default: the traced one, else 1)." };
        var trace = new Command("qemu-trace", "Turn a QEMU vfio trace into a scenario replaying its DMA map/unmap sequence on the model; each call expects\n"
            + "the model's answer, and '# differs:' comments (also printed) mark where QEMU got another (docs/import.md).\n"
            + "Exit 0 when written; 2 when a line is malformed (LOG:LINE:COLUMN) or an option is, nothing written.")
        {
            log, output, name, memory, pageSize, iommu, iommuPages, aperture, kernel, dmaLimit, memlock, device, group,
        };
        trace.SetAction(parse => new ImportCommand(console).Execute(new ImportSettings
        {
            Log = parse.GetValue(log)!,
            Output = parse.GetValue(output)!,
            Name = parse.GetValue(name),
            Memory = parse.GetValue(memory),
            PageSize = parse.GetValue(pageSize),
            Iommu = parse.GetValue(iommu),
            IommuPageSizes = parse.GetValue(iommuPages) ?? [],
            ApertureBits = parse.GetValue(aperture),
            Kernel = parse.GetValue(kernel),
            DmaEntryLimit = parse.GetValue(dmaLimit),
            Memlock = parse.GetValue(memlock),
            Device = parse.GetValue(device),
            Group = parse.GetValue(group),
        }));
        return new Command("import", "Turn what a VMM recorded into a scenario.") { trace };
    }
}
