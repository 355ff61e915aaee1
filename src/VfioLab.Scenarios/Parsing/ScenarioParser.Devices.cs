using System.Globalization;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>The <c>devices:</c> and <c>processes:</c> sections.</summary>
internal static partial class ScenarioParser
{
    private static readonly string[] DeviceKeys =
        ["name", "address", "driver", "group", "bars", "isolated_msi", "misbehaving", "iommu", "iommu_page_sizes", "coherent"];

    private static readonly string[] BarKeys = ["index", "size", "prefetchable", "is64bit"];

    private static readonly string[] ProcessKeys = ["name", "memlock", "cap_ipc_lock"];

    private const int MaxBarIndex = 5;

    private static List<DeviceSpec> ParseDevices(ScenarioNode? node)
    {
        var devices = new List<DeviceSpec>();
        IReadOnlyList<ScenarioNode> items = NodeRead.List(node, "devices");
        for (int i = 0; i < items.Count; i++)
        {
            DeviceSpec device = ParseDevice(items[i], $"devices[{i}]");
            if (devices.Find(d => d.Name == device.Name) is not null)
            {
                ScenarioThrowHelper.ThrowParse(items[i].Get("name")!.Location, $"devices[{i}].name: device '{device.Name}' is declared twice");
            }
            if (devices.Find(d => string.Equals(d.Address, device.Address, StringComparison.OrdinalIgnoreCase)) is { } other)
            {
                ScenarioThrowHelper.ThrowParse(items[i].Get("address")!.Location, $"devices[{i}].address: '{device.Address}' is already device '{other.Name}'");
            }
            devices.Add(device);
        }
        return devices;
    }

    private static DeviceSpec ParseDevice(ScenarioNode node, string what)
    {
        var map = new MapReader(node, what, DeviceKeys);
        string name = NodeRead.NonEmpty(map.Required("name"), map.Path("name"));
        DeviceDriverKind driver = map.Optional("driver") is { } driverNode
            ? NodeRead.Choice(driverNode, map.Path("driver"), SpecNames.Driver)
            : DeviceDriverKind.VfioPci;

        ScenarioNode addressNode = map.Required("address");
        string address = NodeRead.NonEmpty(addressNode, map.Path("address"));
        if (driver == DeviceDriverKind.Mdev ? !Guid.TryParseExact(address, "D", out _) : !IsPciAddress(address))
        {
            ScenarioThrowHelper.ThrowParse(addressNode.Location, driver == DeviceDriverKind.Mdev
                ? $"{map.Path("address")}: an mdev's name is a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got '{address}'"
                : $"{map.Path("address")}: expected a PCI address DDDD:BB:DD.F, got '{address}'");
        }

        int? group = map.Optional("group") is { } groupNode ? NodeRead.Int(groupNode, map.Path("group"), int.MaxValue) : null;

        var bars = new List<BarSpec>();
        IReadOnlyList<ScenarioNode> barNodes = NodeRead.List(map.Optional("bars"), map.Path("bars"));
        for (int i = 0; i < barNodes.Count; i++)
        {
            string barWhat = $"{what}.bars[{i}]";
            var bar = new MapReader(barNodes[i], barWhat, BarKeys);
            ScenarioNode indexNode = bar.Required("index");
            int index = NodeRead.Int(indexNode, bar.Path("index"), MaxBarIndex);
            if (bars.Exists(b => b.Index == index))
            {
                ScenarioThrowHelper.ThrowParse(indexNode.Location, $"{bar.Path("index")}: BAR {index} is declared twice");
            }
            ulong size = NodeRead.PowerOfTwo(bar.Required("size"), bar.Path("size"));
            bars.Add(new BarSpec(index, size, OptionalBool(bar, "prefetchable", false), OptionalBool(bar, "is64bit", true), barNodes[i].Location));
        }

        bool misbehaving = OptionalBool(map, "misbehaving", false);
        if (misbehaving && driver != DeviceDriverKind.Mdev)
        {
            ScenarioThrowHelper.ThrowParse(map.Optional("misbehaving")!.Location, $"{map.Path("misbehaving")}: applies only to driver: mdev");
        }
        IommuHardware? iommu = map.Optional("iommu") is { } iommuNode ? NodeRead.Choice(iommuNode, map.Path("iommu"), SpecNames.Iommu) : null;
        IReadOnlyList<ulong>? pageSizes = map.Optional("iommu_page_sizes") is { } sizesNode
            ? NodeRead.PageSizes(sizesNode, map.Path("iommu_page_sizes"))
            : null;

        return new DeviceSpec(name, address, driver, group, bars, OptionalBool(map, "isolated_msi", true), misbehaving,
            iommu, pageSizes, OptionalBool(map, "coherent", true), node.Location);
    }

    /// <summary>DDDD:BB:DD.F with a device number up to 0x1f and a function up to 7.</summary>
    private static bool IsPciAddress(string s) =>
        s.Length == 12 && s[4] == ':' && s[7] == ':' && s[10] == '.'
        && IsHex(s.AsSpan(0, 4)) && IsHex(s.AsSpan(5, 2)) && IsHex(s.AsSpan(8, 2))
        && int.Parse(s.AsSpan(8, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture) <= 0x1f
        && s[11] is >= '0' and <= '7';

    private static bool IsHex(ReadOnlySpan<char> s)
    {
        foreach (char c in s)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }
        return true;
    }

    private static List<ProcessSpec> ParseProcesses(ScenarioNode? node)
    {
        var processes = new List<ProcessSpec>();
        IReadOnlyList<ScenarioNode> items = NodeRead.List(node, "processes");
        for (int i = 0; i < items.Count; i++)
        {
            string what = $"processes[{i}]";
            var map = new MapReader(items[i], what, ProcessKeys);
            ScenarioNode nameNode = map.Required("name");
            string name = NodeRead.NonEmpty(nameNode, map.Path("name"));
            if (processes.Exists(p => p.Name == name))
            {
                ScenarioThrowHelper.ThrowParse(nameNode.Location, $"{map.Path("name")}: process '{name}' is declared twice");
            }
            ulong memlock = map.Optional("memlock") is { } memlockNode ? Memlock(memlockNode, map.Path("memlock")) : ProcessSpec.DefaultMemlock;
            processes.Add(new ProcessSpec(name, memlock, OptionalBool(map, "cap_ipc_lock", false), items[i].Location));
        }
        return processes;
    }

    private static ulong Memlock(ScenarioNode node, string what) =>
        node.IsScalar && node.Text.Trim() == "unlimited" ? ProcessSpec.Unlimited : NodeRead.Size(node, what);
}
