using System.Globalization;
using VfioLab.Cli.Commands.Run;
using VfioLab.Lab;
using VfioLab.Linux;
using VfioLab.Scenarios;

namespace VfioLab.Cli.Commands.Probe;

/// <summary><c>vfiolab probe [--scenario FILE|NAME [--process P]]</c>: what a VFIO user finds on this machine's real
/// kernel (through <c>VfioLab.Linux</c>), or on the simulated host a scenario describes — through the same typed
/// client either way. Exit 0 when VFIO answered, 1 when there is none to probe, 2 on bad input.</summary>
internal sealed class ProbeCommand(CliConsole console)
{
    private readonly TextWriter _stderr = console.Error;

    public int Execute(string? scenario, string? process)
    {
        ProbeTarget? target = scenario is null ? RealHost() : Simulated(scenario, process);
        if (target is null)
        {
            return ExitCodes.UsageOrInputError;
        }
        return ExitCodes.ForProbe(new HostProbe(console.Out).Probe(target));
    }

    private ProbeTarget? RealHost()
    {
        if (!OperatingSystem.IsLinux())
        {
            _stderr.WriteLine("vfiolab probe: the real-kernel probe needs Linux; use --scenario to probe a simulated host");
            return null;
        }
        var sys = new LinuxSyscalls();
        List<int> groups = [];
        if (Directory.Exists("/dev/vfio"))
        {
            foreach (string path in Directory.EnumerateFileSystemEntries("/dev/vfio"))
            {
                if (int.TryParse(Path.GetFileName(path), NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                {
                    groups.Add(n);
                }
            }
        }
        groups.Sort();
        return new ProbeTarget($"real kernel: {Environment.OSVersion.VersionString} (pid {sys.Pid})", sys, groups, SysfsDevices);
    }

    /// <summary>The devices of IOMMU group <paramref name="group"/> from sysfs (<c>/sys/kernel/iommu_groups/N/devices</c>).</summary>
    private static IReadOnlyList<string> SysfsDevices(int group)
    {
        string dir = $"/sys/kernel/iommu_groups/{group}/devices";
        return Directory.Exists(dir) ? [.. Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)] : [];
    }

    private ProbeTarget? Simulated(string fileOrName, string? processName)
    {
        ScenarioDocument doc;
        LabHost host;
        try
        {
            doc = ScenarioInput.LoadOne(fileOrName);
            host = ScenarioRunner.Prepare(doc).Host;
        }
        catch (ScenarioParseException e)
        {
            _stderr.WriteLine(Printable.Escape(e.Message));
            return null;
        }
        // By default the process a step without process: runs in: the first declared one, or main.
        string name = processName ?? host.Processes[0].Name;
        if (!host.TryGetProcess(name, out LabProcess? process))
        {
            _stderr.WriteLine(Printable.Escape($"vfiolab probe: scenario '{doc.Name}' has no process '{name}' (it has: {string.Join(", ", host.Processes.Select(p => p.Name))})"));
            return null;
        }
        IReadOnlyList<int> groups = [.. host.Devices.Where(d => d.IsVfioBound).Select(d => d.IommuGroup).Distinct().Order()];
        IReadOnlyList<string> DevicesOf(int group) =>
            [.. host.Devices.Where(d => d.IsVfioBound && d.IommuGroup == group).Select(d => d.Address).Order(StringComparer.Ordinal)];
        return new ProbeTarget(Printable.Escape($"simulated host of scenario '{doc.Name}' ({host.IommuName}, process {name}, pid {process!.Pid})"),
            process.Syscalls, groups, DevicesOf);
    }
}
