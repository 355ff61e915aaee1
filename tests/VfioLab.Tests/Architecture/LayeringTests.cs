using System.Text.RegularExpressions;
using System.Xml.Linq;
using VfioLab.Tests.Abi;

namespace VfioLab.Tests.Architecture;

/// <summary>
/// The layers of docs/architecture.md, held against the code: each folder of the model assembly names only the layers
/// below it (by <c>using</c> or by a qualified name), and the model assembly carries no scenario format.
/// </summary>
public sealed partial class LayeringTests
{
    // Layer -> the model layers it may use. PCI sits below the IOMMU: groups are made of PCI functions and a
    // peer-to-peer DMA lands in a BAR, while a PCI function needs nothing of the IOMMU. The VFIO device drivers
    // (Vfio/Pci, Vfio/Mdev) sit above the core and beside the backends: a backend reaches a device only through the
    // core's interfaces, never a particular driver.
    private static readonly Dictionary<string, string[]> Allowed = new(StringComparer.Ordinal)
    {
        ["Collections"] = [],
        ["Addressing"] = [],
        ["Diagnostics"] = [],
        ["Host"] = ["Addressing", "Collections", "Diagnostics"],
        ["Pci"] = ["Addressing", "Collections", "Diagnostics"],
        ["Iommu"] = ["Addressing", "Collections", "Diagnostics", "Host", "Pci"],
        ["Vfio"] = ["Addressing", "Collections", "Diagnostics", "Host", "Pci", "Iommu"],
        ["Vfio/Pci"] = ["Addressing", "Collections", "Diagnostics", "Host", "Pci", "Iommu", "Vfio"],
        ["Vfio/Mdev"] = ["Addressing", "Collections", "Diagnostics", "Host", "Pci", "Iommu", "Vfio"],
        ["Type1"] = ["Addressing", "Collections", "Diagnostics", "Host", "Pci", "Iommu", "Vfio"],
        ["Spapr"] = ["Addressing", "Collections", "Diagnostics", "Host", "Pci", "Iommu", "Vfio"],
        ["Simulation"] = ["Addressing", "Collections", "Diagnostics", "Host", "Pci", "Iommu", "Vfio", "Vfio/Pci", "Vfio/Mdev", "Type1", "Spapr"],
        ["Checks"] = ["Addressing", "Collections", "Diagnostics", "Host", "Pci", "Iommu", "Vfio", "Vfio/Pci", "Vfio/Mdev", "Type1", "Spapr", "Simulation"],
        ["Lab"] = ["Addressing", "Collections", "Diagnostics", "Host", "Pci", "Iommu", "Vfio", "Vfio/Pci", "Vfio/Mdev", "Type1", "Spapr", "Simulation", "Checks"],
    };

    private static readonly string[] Layers = [.. Allowed.Keys.Where(k => !k.Contains('/', StringComparison.Ordinal))];

    [Fact]
    public void ModelFolders_NameOnlyLayersBelowThem()
    {
        string model = Path.Combine(ConformanceProgram.FindRepositoryRoot(), "src", "VfioLab.Model");
        var problems = new List<string>();
        foreach (string layer in Layers)
        {
            foreach (string file in Directory.EnumerateFiles(Path.Combine(model, layer), "*.cs", SearchOption.AllDirectories))
            {
                string relative = Path.GetRelativePath(model, file).Replace('\\', '/');
                string own = Allowed.Keys.Where(k => relative.StartsWith(k + "/", StringComparison.Ordinal)).MaxBy(k => k.Length)!;
                foreach (string used in UsedLayers(File.ReadAllLines(file)))
                {
                    if (used != own && !Allowed[own].Contains(used))
                    {
                        problems.Add($"{relative} ({own}) uses {used}");
                    }
                }
            }
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public void ModelFolders_EachIsALayer()
    {
        string model = Path.Combine(ConformanceProgram.FindRepositoryRoot(), "src", "VfioLab.Model");
        string[] folders = [.. Directory.EnumerateDirectories(model).Select(Path.GetFileName).Where(n => n is not ("bin" or "obj"))!];
        Assert.Equal(Layers.Order(StringComparer.Ordinal), folders.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ModelProject_HasNoYamlDependency()
    {
        string csproj = Path.Combine(ConformanceProgram.FindRepositoryRoot(), "src", "VfioLab.Model", "VfioLab.Model.csproj");
        XDocument doc = XDocument.Load(csproj);
        Assert.DoesNotContain(doc.Descendants("PackageReference"), p => p.Attribute("Include")?.Value == "YamlDotNet");
        Assert.DoesNotContain(doc.Descendants("ProjectReference"), p => p.Attribute("Include")?.Value.Contains("Scenarios", StringComparison.Ordinal) == true);
    }

    // The libraries above the model and what each may reference: VfioLab.Serve (the serve protocol's server) stands
    // on the model, the scenario format (a serve host is a scenario file) and the real-kernel calls (process_vm_readv,
    // pidfds), and on nothing that runs a command line or a fuzzer.
    [Fact]
    public void ServeProject_UsesOnlyModelScenariosAndLinux()
    {
        string csproj = Path.Combine(ConformanceProgram.FindRepositoryRoot(), "src", "VfioLab.Serve", "VfioLab.Serve.csproj");
        string[] references = [.. XDocument.Load(csproj).Descendants("ProjectReference")
            .Select(p => Path.GetFileNameWithoutExtension(p.Attribute("Include")!.Value)).Order(StringComparer.Ordinal)];
        Assert.Equal(["VfioLab.Linux", "VfioLab.Model", "VfioLab.Scenarios"], references);
    }

    [Fact]
    public void ShippedAssemblies_GrantInternalsOnlyToTests()
    {
        string src = Path.Combine(ConformanceProgram.FindRepositoryRoot(), "src");
        var problems = new List<string>();
        foreach (string csproj in Directory.EnumerateFiles(src, "*.csproj", SearchOption.AllDirectories))
        {
            foreach (XElement ivt in XDocument.Load(csproj).Descendants("InternalsVisibleTo"))
            {
                string? to = ivt.Attribute("Include")?.Value;
                if (to is not ("VfioLab.Tests" or "VfioLab.Bench"))
                {
                    problems.Add($"{Path.GetFileName(csproj)} grants its internals to {to}");
                }
            }
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    // A layer is named by `using VfioLab.X`, by `VfioLab.X.` or, inside the model's namespaces, by `X.Type` (a name
    // qualified relative to VfioLab). Comments are skipped.
    private static IEnumerable<string> UsedLayers(string[] lines)
    {
        foreach (string raw in lines)
        {
            string line = raw.TrimStart();
            if (line.StartsWith("//", StringComparison.Ordinal))
            {
                continue;
            }
            foreach (Match m in QualifiedName().Matches(line))
            {
                yield return m.Groups[2].Success ? $"{m.Groups[1].Value}/{m.Groups[2].Value}" : m.Groups[1].Value;
            }
        }
    }

    [GeneratedRegex(@"(?<![\w.])(?:VfioLab\.)?(Collections|Addressing|Diagnostics|Host|Pci|Iommu|Vfio|Type1|Spapr|Simulation|Checks|Lab)\.(?:(Pci|Mdev)\b|[A-Z]\w*)")]
    private static partial Regex QualifiedName();
}
