using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using VfioLab.Lab;
using VfioLab.Scenarios;

namespace VfioLab.Fuzzing;

/// <summary>
/// The host-description campaign: from a seed, generates a scenario's <c>host</c>, <c>devices</c> and
/// <c>processes</c> — extreme and boundary values (memory from a page to past 2^64, BARs from 1 byte to 2^63, IOMMU
/// page sizes and apertures off every boundary, frame runs of one page), overlapping and contradictory reserved
/// regions, many devices sharing and colliding in groups, odd page sizes — sometimes with one value mutated further,
/// followed by steps that use the host (a container, a group, MAP of memory and of a BAR, device DMA, an mdev's pins).
/// Each case must end in a <see cref="ScenarioParseException"/> located in its file, raised when the file is parsed
/// (the model's rules run before anything is built), or in a run whose invariants hold after every step. Anything
/// else — another exception, a refusal only when the host is built, a broken invariant — is a violation.
/// </summary>
internal sealed partial class HostCampaign
{
    private const ulong KiB = 1UL << 10;
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;

    private static readonly ulong[] Memories =
    [
        0, 4 * KiB, 64 * KiB, 2 * MiB, 256 * MiB, 16 * GiB, 0x12345, 4 * KiB + 1, LabLimits.MaxMemoryBytes, LabLimits.MaxMemoryBytes + 4 * KiB,
        1UL << 51, (1UL << 51) - GiB, 0xfffffffffffff000, ulong.MaxValue, LabLimits.MaxFrameRuns * 4 * KiB, (LabLimits.MaxFrameRuns + 1) * 4 * KiB,
    ];

    private static readonly ulong[] PageSizes = [4 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 8 * KiB, 0, 1, 2 * MiB];

    private static readonly ulong[] IommuPages = [512, 4 * KiB, 8 * KiB, 16 * KiB, 64 * KiB, 2 * MiB, 512 * MiB, GiB, 1UL << 39, 1UL << 62, 1UL << 63, 3 * 4 * KiB];

    private static readonly ulong[] Addresses =
    [
        0, 0x800, 0x1000, 0xfff, 0xfee00000, 0xfeefffff, 0xffffffff, 1UL << 32, (1UL << 39) - 1, (1UL << 48) - 1, 1UL << 48, (1UL << 57) - 1,
        ulong.MaxValue - 0xfff, ulong.MaxValue - 1, ulong.MaxValue, 0x8000_0000_0000_0000,
    ];

    private static readonly ulong[] BarSizes = [1, 3, 8, 16, 4 * KiB, 64 * KiB, MiB, 256 * MiB, 2 * GiB, 4 * GiB, 1UL << 40, 1UL << 50, 1UL << 62, 1UL << 63, 0];

    private static readonly string[] Extremes =
    [
        "0", "1", "3", "16", "0x7fffffff", "0x80000000", "0xffffffff", "4294967296", "0x7fffffffffffffff", "0x8000000000000000",
        "0xffffffffffffffff", "0xfffffffffffff000", "1024TiB", "2048TiB", "4KiB", "64KiB", "2MiB", "-1", "0x1000000000000",
    ];

    private static readonly string[] ReservedTypes = ["reserved", "msi", "direct", "direct-relaxable", "sw-msi"];

    private readonly string _workDirectory;
    private readonly HashSet<string> _refusals = new(StringComparer.Ordinal);

    /// <param name="workDirectory">Where each case is written to be parsed as a file.</param>
    public HostCampaign(string workDirectory)
    {
        _workDirectory = workDirectory;
    }

    /// <summary>What was tried and reached.</summary>
    public FuzzFigures Figures { get; } = new();

    /// <summary>Failing cases found; each scenario is the case's text.</summary>
    public List<FuzzViolation> Violations { get; } = [];

    /// <summary>The distinct refusals seen (numbers and quoted names left out), sorted.</summary>
    public IEnumerable<string> Refusals => _refusals.Order(StringComparer.Ordinal);

    /// <summary>Generates, parses and (when it parses) runs the case of seed <paramref name="seed"/>.</summary>
    public void RunSeed(ulong seed)
    {
        string text = CaseOf(seed, out string how);
        Figures.HostDescriptions++;
        string file = Path.Combine(_workDirectory, string.Create(CultureInfo.InvariantCulture, $"host-{seed}.yaml"));
        File.WriteAllText(file, text);
        try
        {
            if (Judge(file, text) is { } problem)
            {
                Figures.Violations++;
                if (problem.Contains(" threw ", StringComparison.Ordinal))
                {
                    Figures.HostInternalErrors++;
                }
                Violations.Add(new FuzzViolation("host", "any", seed, $"{how}: {problem}", text));
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>The scenario text of seed <paramref name="seed"/>, and what it stresses.</summary>
    public static string CaseOf(ulong seed, out string how)
    {
        var rng = new SplitMix64(seed);
        var sb = new StringBuilder();
        var devices = new List<(string Name, string Address, bool Mdev, int? Group)>();
        sb.AppendLine("vfiolab: 1");
        sb.AppendLine(CultureInfo.InvariantCulture, $"name: host-{seed}");
        // Half the cases are wild (extremes anywhere), half plausible (extremes only where a mutation puts one), so
        // that both refusals and runs of unusual but valid hosts are reached.
        bool wild = rng.Next() % 2 == 0;
        bool spapr = AppendHost(ref rng, sb, wild);
        AppendDevices(ref rng, sb, devices, wild);
        sb.AppendLine("processes:");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - {{ name: vmm, memlock: {Pick(ref rng, ["8MiB", "unlimited", "0", "64MiB", "0xffffffffffffffff"])} }}");
        sb.AppendLine("steps:");
        AppendSteps(ref rng, sb, devices, spapr);
        string text = sb.ToString();
        how = $"{(wild ? "wild" : "plausible")}, {devices.Count} device(s)";
        if (rng.Next() % 4 == 0)
        {
            text = Mutate(ref rng, text, out string mutation);
            how += ", " + mutation;
        }
        return text;
    }

    private string? Judge(string file, string text)
    {
        ScenarioDocument doc;
        try
        {
            doc = ScenarioDocument.Load(file);
        }
        catch (ScenarioParseException e)
        {
            Refused(e);
            return ScenarioCampaign.Located(e, file, text);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"parse threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }
        PreparedScenario prepared;
        try
        {
            prepared = ScenarioRunner.Prepare(doc, new RunOptions { CheckInvariants = true });
        }
        catch (ScenarioParseException e)
        {
            Refused(e);
            return $"refused only when the host was built, not when the file was parsed: {e.Message}";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"building the host threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }
        try
        {
            Figures.HostRuns++;
            ScenarioOutcome outcome = prepared.Execute();
            Figures.Reached("host run", outcome.Passed ? 0 : -1);
            StepViolation? broken = outcome.Steps.SelectMany(s => s.Violations).FirstOrDefault();
            return broken is null ? null : $"invariant {broken.Invariant} broken: {broken.Message}";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"run threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }
    }

    private void Refused(ScenarioParseException e)
    {
        Figures.Reached("host refused", -22);
        if (_refusals.Add(Shape(e.Reason)))
        {
            Figures.HostRefusals = _refusals.Count;
        }
    }

    // A refusal's kind: its text with numbers, quoted names and list positions left out.
    private static string Shape(string reason) => Numbers().Replace(Quoted().Replace(reason, "'…'"), "#");

    [GeneratedRegex("'[^']*'")]
    private static partial Regex Quoted();

    [GeneratedRegex("(0x[0-9a-fA-F]+|[0-9]+)")]
    private static partial Regex Numbers();

    private static bool AppendHost(ref SplitMix64 rng, StringBuilder sb, bool wild)
    {
        sb.AppendLine("host:");
        if (rng.Next() % 4 != 0)
        {
            ulong memory = !wild || rng.Next() % 3 == 0 ? ((rng.Next() % (64 * GiB)) & ~0xffffUL) + 64 * KiB : Pick(ref rng, Memories);
            sb.AppendLine(CultureInfo.InvariantCulture, $"  memory: 0x{memory:x}");
        }
        if (rng.Next() % 4 == 0)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  page_size: 0x{(wild ? Pick(ref rng, PageSizes) : Pick(ref rng, [4 * KiB, 16 * KiB, 64 * KiB])):x}");
        }
        string iommu = Pick(ref rng, ["vt-d", "amd-vi", "smmu-v3", "vt-d", "spapr-tce"]);
        sb.AppendLine(CultureInfo.InvariantCulture, $"  iommu: {iommu}");
        if (rng.Next() % 3 == 0)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  iommu_page_sizes: [{PageSizeList(ref rng, wild)}]");
        }
        if (rng.Next() % 3 == 0)
        {
            (ulong start, ulong last) = Range(ref rng);
            if (!wild)
            {
                (start, last) = (start & ~0x1fffffUL, last | 0x1fffffUL);
            }
            sb.AppendLine(CultureInfo.InvariantCulture, $"  aperture: {{ start: 0x{start:x}, last: 0x{last:x} }}");
        }
        int reserved = (int)(rng.Next() % 4);
        if (reserved > 0)
        {
            sb.AppendLine("  reserved_regions:");
            for (int i = 0; i < reserved; i++)
            {
                (ulong start, ulong last) = Range(ref rng);
                sb.AppendLine(CultureInfo.InvariantCulture, $"    - {{ start: 0x{start:x}, last: 0x{last:x}, type: {Pick(ref rng, ReservedTypes)} }}");
            }
        }
        sb.AppendLine(CultureInfo.InvariantCulture, $"  kernel: {Pick(ref rng, [.. KernelProfiles.All])}");
        if (rng.Next() % 3 == 0)
        {
            string limit = Pick(ref rng, ["0", "1", "2", "65535", "0xffffffff"]);
            sb.AppendLine(CultureInfo.InvariantCulture, $"  params: {{ dma_entry_limit: {limit}, disable_hugepages: {Bool(ref rng)}, allow_unsafe_interrupts: {Bool(ref rng)}, strict_mmio_maps: {Bool(ref rng)} }}");
        }
        if (rng.Next() % 3 == 0)
        {
            string runs = Pick(ref rng, ["1", "2", "16", "512", "0x100000", "0xffffffffffffffff"]);
            sb.AppendLine(CultureInfo.InvariantCulture, $"  frames: {{ layout: scattered, run_pages: {runs}, seed: {rng.Next() % 100} }}");
        }
        return iommu == "spapr-tce";
    }

    private static void AppendDevices(ref SplitMix64 rng, StringBuilder sb, List<(string Name, string Address, bool Mdev, int? Group)> devices, bool wild)
    {
        ulong count = rng.Next() % 8 == 0 ? 20 + (rng.Next() % 200) : rng.Next() % 5;
        int[] groups = [0, 1, 1, 2, 7, 255, 65536, int.MaxValue];
        if (count == 0)
        {
            return;
        }
        sb.AppendLine("devices:");
        for (int i = 0; i < (int)count; i++)
        {
            bool mdev = rng.Next() % 5 == 0;
            string name = string.Create(CultureInfo.InvariantCulture, $"d{i}");
            int? group = rng.Next() % 3 == 0 ? null : count > 8 && rng.Next() % 2 == 0 ? i : groups[rng.Next() % (ulong)groups.Length];
            string groupText = group is { } g ? string.Create(CultureInfo.InvariantCulture, $", group: {g}") : string.Empty;
            if (mdev)
            {
                string uuid = string.Create(CultureInfo.InvariantCulture, $"5a0e2f6c-1d7b-4c43-9a53-{(rng.Next() % 4 == 0 ? 1 : i):x12}");
                devices.Add((name, uuid, true, group));
                sb.AppendLine(CultureInfo.InvariantCulture, $"  - {{ name: {name}, driver: mdev, address: \"{uuid}\"{groupText}, misbehaving: false }}");
                continue;
            }
            int bus = rng.Next() % 6 == 0 ? 1 : 1 + i / 8;
            string address = string.Create(CultureInfo.InvariantCulture, $"0000:{bus % 256:x2}:{i % 32:x2}.{(int)(rng.Next() % 8)}");
            devices.Add((name, address, false, group));
            var line = new StringBuilder();
            line.Append(CultureInfo.InvariantCulture, $"  - {{ name: {name}, address: \"{address}\"{groupText}");
            if (rng.Next() % 6 == 0)
            {
                line.Append(", driver: host");
            }
            int bars = (int)(rng.Next() % 4);
            if (bars > 0)
            {
                line.Append(", bars: [");
                for (int b = 0; b < bars; b++)
                {
                    ulong size = !wild || rng.Next() % 2 == 0 ? Pick(ref rng, [4 * KiB, MiB, 16 * MiB, 256 * MiB]) : Pick(ref rng, BarSizes);
                    int index = wild && rng.Next() % 4 == 0 ? (int)(rng.Next() % 7) : b * 2;
                    line.Append(CultureInfo.InvariantCulture, $"{(b > 0 ? ", " : " ")}{{ index: {index}, size: 0x{size:x}, is64bit: {(rng.Next() % 4 != 0 ? "true" : "false")}, prefetchable: {Bool(ref rng)} }}");
                }
                line.Append(" ]");
            }
            if (rng.Next() % 4 == 0)
            {
                line.Append(CultureInfo.InvariantCulture, $", iommu: {Pick(ref rng, ["vt-d", "amd-vi", "smmu-v3", "spapr-tce"])}");
            }
            if (rng.Next() % 5 == 0)
            {
                line.Append(CultureInfo.InvariantCulture, $", iommu_page_sizes: [{PageSizeList(ref rng, wild)}]");
            }
            if (rng.Next() % 6 == 0)
            {
                line.Append(", isolated_msi: false");
            }
            if (rng.Next() % 6 == 0)
            {
                line.Append(", coherent: false");
            }
            sb.AppendLine(line.Append(" }").ToString());
        }
    }

    // Steps that use whatever the host has: memory mapped and MAPped, the first vfio-pci device's group in a
    // container, its BAR mmapped and MAPped (peer-to-peer), its DMA, an mdev's pins. Failures are fine (a step may
    // miss its expectation); only invariants and exceptions are judged.
    private static void AppendSteps(ref SplitMix64 rng, StringBuilder sb, List<(string Name, string Address, bool Mdev, int? Group)> devices, bool spapr)
    {
        ulong iova = rng.Next() % 2 == 0 ? Pick(ref rng, Addresses) & ~0xfffUL : 0x100000;
        sb.AppendLine("  - mmap: { size: 2MiB, as: ram }");
        sb.AppendLine("  - write: { vaddr: ram, fill: 0x5a, size: 4KiB }");
        sb.AppendLine("  - open: { path: /dev/vfio/vfio, as: c }");
        (string Name, string Address, bool Mdev, int? Group) pci = devices.Find(d => !d.Mdev);
        if (pci.Name is null)
        {
            sb.AppendLine("  - check_extension: { fd: c, extension: VFIO_TYPE1v2_IOMMU }");
            return;
        }
        string group = pci.Group is { } g ? g.ToString(CultureInfo.InvariantCulture) : "0";
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - open: {{ path: /dev/vfio/{group}, as: g }}");
        sb.AppendLine("  - group_set_container: { fd: g, container: c }");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - set_iommu: {{ fd: c, type: {(spapr ? "VFIO_SPAPR_TCE_v2_IOMMU" : "VFIO_TYPE1v2_IOMMU")} }}");
        sb.AppendLine("  - iommu_get_info: { fd: c }");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - map_dma: {{ fd: c, iova: 0x{iova:x}, vaddr: ram, size: 2MiB }}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - get_device_fd: {{ fd: g, name: \"{pci.Address}\", as: dev }}");
        sb.AppendLine("  - device_get_region_info: { fd: dev, index: 0 }");
        sb.AppendLine("  - mmap_region: { device_fd: dev, index: 0, size: 4KiB, as: bar }");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - map_dma: {{ fd: c, iova: 0x{iova ^ 0x4000_0000:x}, vaddr: bar, size: 4KiB }}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - dma: {{ device: {pci.Name}, op: write, iova: 0x{iova:x}, size: 4KiB, fill: 0xab }}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - dma: {{ device: {pci.Name}, op: read, iova: 0x{iova ^ 0x4000_0000:x}, size: 16 }}");
        if (devices.Find(d => d.Mdev) is { Name: not null } mdev)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  - open: {{ path: /dev/vfio/{mdev.Group ?? 0}, as: mg }}");
            sb.AppendLine("  - group_set_container: { fd: mg, container: c }");
            sb.AppendLine(CultureInfo.InvariantCulture, $"  - get_device_fd: {{ fd: mg, name: \"{mdev.Address}\", as: md }}");
            sb.AppendLine(CultureInfo.InvariantCulture, $"  - pin_pages: {{ device: {mdev.Name}, iova: 0x{iova:x}, count: 2 }}");
            sb.AppendLine(CultureInfo.InvariantCulture, $"  - unpin_pages: {{ device: {mdev.Name}, iova: 0x{iova:x}, count: 1 }}");
        }
        sb.AppendLine("  - device_reset: { fd: dev }");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  - unmap_dma: {{ fd: c, iova: 0x{iova:x}, size: 2MiB }}");
        sb.AppendLine("  - close: { fd: dev }");
        sb.AppendLine("  - group_unset_container: { fd: g }");
    }

    // One number of the host, devices or processes sections replaced by an extreme.
    private static string Mutate(ref SplitMix64 rng, string text, out string how)
    {
        int stepsAt = text.IndexOf("\nsteps:", StringComparison.Ordinal);
        MatchCollection numbers = Numbers().Matches(text[..stepsAt]);
        var candidates = numbers.Where(m => m.Index > 0 && text[m.Index - 1] is ' ' or '[').ToList();
        if (candidates.Count == 0)
        {
            how = "no number to mutate";
            return text;
        }
        Match at = candidates[(int)(rng.Next() % (ulong)candidates.Count)];
        string value = Pick(ref rng, Extremes);
        how = $"{at.Value} at offset {at.Index} replaced by {value}";
        return text[..at.Index] + value + text[(at.Index + at.Length)..];
    }

    private static string PageSizeList(ref SplitMix64 rng, bool wild)
    {
        int n = 1 + (int)(rng.Next() % 3);
        var sizes = new List<string>(n);
        for (int i = 0; i < n; i++)
        {
            ulong size = wild ? Pick(ref rng, IommuPages) : Pick(ref rng, [4 * KiB, 16 * KiB, 64 * KiB, 2 * MiB, 512 * MiB, GiB, 1UL << 39, 1UL << 63]);
            sizes.Add(string.Create(CultureInfo.InvariantCulture, $"0x{size:x}"));
        }
        return string.Join(", ", sizes);
    }

    private static (ulong Start, ulong Last) Range(ref SplitMix64 rng)
    {
        ulong a = Pick(ref rng, Addresses);
        ulong b = Pick(ref rng, Addresses);
        return rng.Next() % 8 == 0 ? (Math.Max(a, b), Math.Min(a, b)) : (Math.Min(a, b), Math.Max(a, b));
    }

    private static string Bool(ref SplitMix64 rng) => rng.Next() % 2 == 0 ? "true" : "false";

    private static T Pick<T>(ref SplitMix64 rng, T[] values) => values[rng.Next() % (ulong)values.Length];
}
