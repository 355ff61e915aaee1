using System.Globalization;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>The <c>devices:</c> and <c>processes:</c> sections.</summary>
internal static partial class ScenarioParser
{
    private static readonly string[] DeviceKeys =
        ["name", "address", "driver", "group", "bars", "isolated_msi", "misbehaving", "iommu", "iommu_page_sizes", "coherent",
         "ids", "express", "reset", "irqs", "rom"];

    private static readonly string[] IdsKeys = ["vendor", "device", "class", "subsystem_vendor", "subsystem", "revision"];

    private static readonly string[] IrqsKeys = ["intx", "msi", "msix", "msix_bar"];

    private static readonly string[] PciFunctionKeys = ["ids", "express", "reset", "irqs", "rom"];

    private static readonly IReadOnlyDictionary<string, Lab.LabPciReset> ResetNames = new Dictionary<string, Lab.LabPciReset>(StringComparer.Ordinal)
    {
        ["flr"] = Lab.LabPciReset.Flr,
        ["pm"] = Lab.LabPciReset.Pm,
        ["slot"] = Lab.LabPciReset.Slot,
        ["bus"] = Lab.LabPciReset.Bus,
        ["none"] = Lab.LabPciReset.None,
    };

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

        PciFunctionSpec? function = null;
        if (driver == DeviceDriverKind.Mdev)
        {
            foreach (string key in PciFunctionKeys)
            {
                if (map.Optional(key) is { } given)
                {
                    ScenarioThrowHelper.ThrowParse(given.Location, $"{map.Path(key)}: an mdev has no PCI config space; '{key}' applies to driver: vfio-pci or host");
                }
            }
        }
        else
        {
            function = ParsePciFunction(map, bars);
        }

        return new DeviceSpec(name, address, driver, group, bars, OptionalBool(map, "isolated_msi", true), misbehaving,
            iommu, pageSizes, OptionalBool(map, "coherent", true), node.Location, function);
    }

    // ids, express, reset, irqs and rom, each checked where it is written: MSI vectors a power of two up to 32, MSI-X
    // up to 2048 in a declared BAR large enough for the table and PBA, FLR only on PCI Express, a ROM of at least 2 KiB.
    private static PciFunctionSpec ParsePciFunction(MapReader map, List<BarSpec> bars)
    {
        PciFunctionSpec f = PciFunctionSpec.Default;
        if (map.Optional("ids") is { } idsNode)
        {
            var ids = new MapReader(idsNode, map.Path("ids"), IdsKeys);
            f = f with
            {
                Vendor = (ushort)OptionalInt(ids, "vendor", f.Vendor, 0xffff),
                Device = (ushort)OptionalInt(ids, "device", f.Device, 0xffff),
                ClassCode = (uint)OptionalInt(ids, "class", (int)f.ClassCode, 0xff_ffff),
                SubsystemVendor = (ushort)OptionalInt(ids, "subsystem_vendor", f.SubsystemVendor, 0xffff),
                Subsystem = (ushort)OptionalInt(ids, "subsystem", f.Subsystem, 0xffff),
                Revision = (byte)OptionalInt(ids, "revision", f.Revision, 0xff),
            };
        }
        f = f with { Express = OptionalBool(map, "express", f.Express) };
        if (map.Optional("reset") is { } resetNode)
        {
            f = f with { Reset = NodeRead.Choice(resetNode, map.Path("reset"), ResetNames) };
            if (f.Reset == Lab.LabPciReset.Flr && !f.Express)
            {
                ScenarioThrowHelper.ThrowParse(resetNode.Location, $"{map.Path("reset")}: flr needs express: true (FLR is advertised in the PCI Express capability); use pm, slot, bus or none");
            }
        }
        else if (!f.Express)
        {
            f = f with { Reset = Lab.LabPciReset.None }; // a conventional function has no FLR to default to
        }
        if (map.Optional("irqs") is { } irqsNode)
        {
            var irqs = new MapReader(irqsNode, map.Path("irqs"), IrqsKeys);
            int intx = OptionalInt(irqs, "intx", 1, 1);
            int msi = OptionalInt(irqs, "msi", f.Msi, 32);
            if (msi != 0 && (msi & (msi - 1)) != 0)
            {
                ScenarioThrowHelper.ThrowParse(irqs.Optional("msi")!.Location, $"{irqs.Path("msi")}: {msi} MSI vectors: a power of two from 1 to 32, or 0 for no MSI capability");
            }
            int msix = OptionalInt(irqs, "msix", 0, 2048);
            int msixBar = OptionalInt(irqs, "msix_bar", bars.Count > 0 ? bars.Min(b => b.Index) : 0, MaxBarIndex);
            if (msix > 0)
            {
                SourceLocation where = (irqs.Optional("msix_bar") ?? irqs.Optional("msix")!).Location;
                BarSpec? bar = bars.Find(b => b.Index == msixBar);
                ulong needed = ((ulong)msix * 16) + ((((ulong)msix + 63) / 64) * 8);
                if (bar is null)
                {
                    ScenarioThrowHelper.ThrowParse(where, $"{irqs.Path("msix_bar")}: the MSI-X table goes in BAR {msixBar}, which the device does not declare");
                }
                else if (bar.Size < needed)
                {
                    ScenarioThrowHelper.ThrowParse(where, $"{irqs.Path("msix")}: {msix} vectors need 0x{needed:x} bytes of BAR {msixBar} for the table and PBA; it has 0x{bar.Size:x}");
                }
            }
            else if (irqs.Optional("msix_bar") is { } stray)
            {
                ScenarioThrowHelper.ThrowParse(stray.Location, $"{irqs.Path("msix_bar")}: applies only with msix: N above 0");
            }
            f = f with { Intx = intx == 1, Msi = msi, Msix = msix, MsixBar = msixBar };
        }
        if (map.Optional("rom") is { } romNode)
        {
            ulong rom = NodeRead.PowerOfTwo(romNode, map.Path("rom"));
            if (rom < 2048 || rom > 1UL << 31)
            {
                ScenarioThrowHelper.ThrowParse(romNode.Location, $"{map.Path("rom")}: a ROM is 2KiB to 2GiB, got 0x{rom:x}");
            }
            f = f with { Rom = rom };
        }
        return f;
    }

    private static int OptionalInt(MapReader map, string key, int dflt, int max) =>
        map.Optional(key) is { } node ? NodeRead.Int(node, map.Path(key), max) : dflt;

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
