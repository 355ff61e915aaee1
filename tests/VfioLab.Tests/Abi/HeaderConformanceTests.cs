using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>AbiLayout against the system's linux/vfio.h, compiled by the C compiler.</summary>
public sealed class HeaderConformanceTests
{
    [Fact]
    public void AbiLayout_ComparedWithSystemHeader_HasNoDifference()
    {
        Dictionary<string, ulong> header = ConformanceProgram.Run();
        Dictionary<string, ulong> model = ModelFacts();

        var differences = new List<string>();
        foreach ((string key, ulong expected) in header)
        {
            if (!model.TryGetValue(key, out ulong actual))
            {
                differences.Add($"{key}: {expected} in linux/vfio.h, missing from AbiLayout");
            }
            else if (actual != expected)
            {
                differences.Add($"{key}: {expected} in linux/vfio.h, {actual} in AbiLayout");
            }
        }
        foreach ((string key, ulong actual) in model)
        {
            if (!header.ContainsKey(key))
            {
                differences.Add($"{key}: {actual} in AbiLayout, not printed by {ConformanceProgram.SourceRelativePath}");
            }
        }

        Assert.True(differences.Count == 0,
            $"{differences.Count} difference(s) between AbiLayout and linux/vfio.h:\n" + string.Join('\n', differences));
    }

    [Fact]
    public void AbiLayout_Facts_HaveUniqueNames()
    {
        // ModelFacts throws on a duplicate key; the C side is checked by ConformanceProgram.Parse.
        Assert.NotEmpty(ModelFacts());
    }

    [Fact]
    public void Parse_ProgramOutputLines_KeysByEverythingButTheValue()
    {
        Dictionary<string, ulong> facts = ConformanceProgram.Parse("sizeof vfio_bitmap 24\noffsetof vfio_bitmap data 16\nioctl VFIO_IOMMU_MAP_DMA 15217\n");

        Assert.Equal(24UL, facts["sizeof vfio_bitmap"]);
        Assert.Equal(16UL, facts["offsetof vfio_bitmap data"]);
        Assert.Equal(0x3B71UL, facts["ioctl VFIO_IOMMU_MAP_DMA"]);
    }

    private static Dictionary<string, ulong> ModelFacts()
    {
        var facts = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (AbiStructLayout s in AbiLayout.Structs)
        {
            facts.Add($"sizeof {s.CName}", (ulong)s.SizeOf);
            foreach (AbiFieldLayout f in s.Fields)
            {
                facts.Add($"offsetof {s.CName} {f.CName}", (ulong)f.Offset);
            }
        }
        foreach (AbiConstant c in AbiLayout.RequestCodes)
        {
            facts.Add($"ioctl {c.CName}", c.Value);
        }
        foreach (AbiConstant c in AbiLayout.Constants)
        {
            facts.Add($"const {c.CName}", c.Value);
        }
        return facts;
    }
}
