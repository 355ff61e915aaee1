using System.Globalization;
using VfioLab.Cli.Commands.Run;
using VfioLab.Host;
using VfioLab.Linux;
using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Parsing;
using VfioLab.Scenarios.Running;
using VfioLab.Simulation;

namespace VfioLab.Cli.Commands.Probe;

/// <summary><c>vfiolab probe [--scenario FILE|NAME [--process P]]</c>: what a VFIO user finds on this machine's real
/// kernel (through <c>VfioLab.Linux</c>), or on the simulated host a scenario describes — through the same typed
/// client either way. Exit 0 when VFIO answered, 1 when there is none to probe, 2 on bad input.</summary>
internal sealed class ProbeCommand(TextWriter stdout, TextWriter stderr)
{
    public int Execute(CommandLine line)
    {
        if (line.Positional.Count != 0)
        {
            stderr.WriteLine("vfiolab probe: takes no positional argument (use --scenario FILE|NAME)");
            return ExitCodes.UsageOrInputError;
        }
        string? scenario = line.Value(ProbeCommandDefinition.Scenario);
        ProbeTarget? target = scenario is null ? RealHost() : Simulated(scenario, line.Value(ProbeCommandDefinition.Process));
        if (target is null)
        {
            return ExitCodes.UsageOrInputError;
        }
        return new HostProbe(stdout).Probe(target) ? ExitCodes.Success : ExitCodes.ScenarioFailed;
    }

    private ProbeTarget? RealHost()
    {
        if (!OperatingSystem.IsLinux())
        {
            stderr.WriteLine("vfiolab probe: the real-kernel probe needs Linux; use --scenario to probe a simulated host");
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
        SimulatedHost host;
        IReadOnlyDictionary<string, Process> processes;
        try
        {
            doc = RunCommand.Load(fileOrName);
            Lab.LabHost lab = ScenarioHostFactory.Build(doc);
            host = lab.Simulated;
            processes = lab.Processes.ToDictionary(p => p.Name, p => p.Process, StringComparer.Ordinal);
        }
        catch (ScenarioParseException e)
        {
            stderr.WriteLine(e.Message);
            return null;
        }
        string? name = processName ?? doc.DefaultProcess?.Name;
        if (name is null || !processes.TryGetValue(name, out Process? process))
        {
            stderr.WriteLine($"vfiolab probe: scenario '{doc.Name}' has no process '{name}' (it has: {string.Join(", ", processes.Keys)})");
            return null;
        }
        IReadOnlyList<int> groups = [.. host.Devices.Values.Where(d => d.Vfio is not null).Select(d => d.Group.Id).Distinct().Order()];
        IReadOnlyList<string> DevicesOf(int group) =>
            [.. host.Devices.Values.Where(d => d.Vfio is not null && d.Group.Id == group).Select(d => d.DeviceName).Order(StringComparer.Ordinal)];
        return new ProbeTarget($"simulated host of scenario '{doc.Name}' ({host.DefaultIommu.Name}, process {name}, pid {process.Pid})",
            process.Syscalls, groups, DevicesOf);
    }
}
