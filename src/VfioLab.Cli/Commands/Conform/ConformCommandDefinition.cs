using System.CommandLine;

namespace VfioLab.Cli.Commands.Conform;

/// <summary>Options of <c>vfiolab conform</c> and the guest half it boots, <c>vfiolab conform-guest</c>.</summary>
internal static class ConformCommandDefinition
{
    public static Command Create(CliConsole console)
    {
        var paths = new Argument<string[]>("FILE|DIR") { Arity = ArgumentArity.OneOrMore, Description = "Scenario files, or directories of them (*.yaml)." };
        var kernel = new Option<string>("--kernel") { HelpName = "6.1|6.12", Required = true, Description = "The Debian kernel the rig boots." };
        var iommu = new Option<string>("--iommu") { HelpName = "intel|intel48|virtio", DefaultValueFactory = _ => "intel", Description = "The guest's IOMMU: VT-d 39-bit, VT-d 48-bit, virtio-iommu (6.12 only)." };
        var json = new Option<bool>("--json") { Description = "Print the comparison as one JSON document." };
        var rig = new Option<string>("--rig") { HelpName = "DIR", Description = "The rig's directory (default: conformance/ of the checkout this runs from or in)." };
        var keep = new Option<string>("--keep") { HelpName = "DIR", Description = "Keep the manifests and each boot's files there." };
        var command = new Command("conform", "Run scenarios on a real Linux kernel (booted by the conformance rig under QEMU) and on the model under the matching "
            + "profile, and compare every step: errno, return value, every output field and bytes. Exit 0 only on full agreement; "
            + "1 on a difference, a refused scenario, or a failed boot; 2 on malformed input.")
        {
            paths, kernel, iommu, json, rig, keep,
        };
        command.SetAction(parse => new ConformCommand(console).Execute(new ConformSettings(
            parse.GetValue(paths)!, parse.GetValue(kernel)!, parse.GetValue(iommu)!, parse.GetValue(json), parse.GetValue(rig), parse.GetValue(keep))));
        return command;
    }

    public static Command CreateGuest(CliConsole console)
    {
        var manifest = new Argument<string>("MANIFEST") { Description = "The manifest vfiolab conform wrote." };
        var command = new Command("conform-guest", "Inside a conformance rig guest: run a manifest's scenarios on this kernel (used by vfiolab conform).")
        {
            manifest,
        };
        command.Hidden = true;
        command.SetAction(parse => new GuestRunner(console).Execute(parse.GetValue(manifest)!));
        return command;
    }
}

/// <summary>What <c>vfiolab conform</c> was asked.</summary>
internal sealed record ConformSettings(string[] Paths, string Kernel, string Iommu, bool Json, string? Rig, string? Keep);
