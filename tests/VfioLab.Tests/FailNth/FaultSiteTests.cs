using System.Reflection;
using VfioLab.Diagnostics;

namespace VfioLab.Tests.FailNth;

/// <summary>The fault sites are defined once: <see cref="FaultSite.All"/> lists every member, and the inventory in
/// this folder's README names each.</summary>
public sealed class FaultSiteTests
{
    [Fact]
    public void All_ListsEveryMemberOnce()
    {
        IEnumerable<string> members = typeof(FaultSite).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(FaultSite))
            .Select(f => ((FaultSite)f.GetValue(null)!).Name);
        Assert.Equal(members.Order(StringComparer.Ordinal), FaultSite.All.Select(s => s.Name).Order(StringComparer.Ordinal));
        Assert.Equal(FaultSite.All.Count, FaultSite.All.Distinct().Count());
    }

    [Fact]
    public void Readme_NamesEverySiteInItsInventory()
    {
        string readme = File.ReadAllText(Path.Combine(Abi.ConformanceProgram.FindRepositoryRoot(), "tests", "VfioLab.Tests", "FailNth", "README.md"));
        Assert.All(FaultSite.All, s => Assert.Contains($"`{s.Name}`", readme, StringComparison.Ordinal));
    }

    [Fact]
    public void Named_UnknownName_Throws()
    {
        Assert.Equal(FaultSite.LockAcct, FaultSite.Named("lock_acct"));
        Assert.Throws<ArgumentException>(() => FaultSite.Named("lock-acct"));
    }
}
