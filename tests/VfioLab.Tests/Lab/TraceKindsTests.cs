using System.Reflection;
using VfioLab.Diagnostics;
using VfioLab.Lab;

namespace VfioLab.Tests.Lab;

/// <summary>The public list of trace kinds is the model's own: every kind it can emit, and nothing else.</summary>
public sealed class TraceKindsTests
{
    [Fact]
    public void All_ListsEveryKindTheModelDefines_InItsOrder()
    {
        Assert.Equal(TraceKind.All.Select(k => k.Name), TraceKinds.All);
    }

    [Fact]
    public void TraceKind_EveryMemberIsInAll_AndNamedAsItsPublicConstant()
    {
        Dictionary<string, string> model = typeof(TraceKind).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(TraceKind))
            .ToDictionary(f => f.Name, f => ((TraceKind)f.GetValue(null)!).Name);
        Dictionary<string, string> lab = typeof(TraceKinds).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral)
            .ToDictionary(f => f.Name, f => (string)f.GetRawConstantValue()!);
        Assert.Equal(model.OrderBy(p => p.Key, StringComparer.Ordinal), lab.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(model.Values.Order(StringComparer.Ordinal), TraceKinds.All.Order(StringComparer.Ordinal));
        Assert.Equal(TraceKinds.All.Count, TraceKinds.All.Distinct(StringComparer.Ordinal).Count());
    }
}
