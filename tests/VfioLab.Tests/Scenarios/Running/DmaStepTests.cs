using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;
using VfioLab.Scenarios.Running;

namespace VfioLab.Tests.Scenarios.Running;

/// <summary>
/// The <c>dma</c> step: a device's DMA run from a scenario, its result fields, and how <c>expect</c>
/// judges a fault. Without a type1 backend the groups have no domain, so most runs fault; the
/// successful ones attach a domain to the group directly before the steps run.
/// </summary>
public sealed class DmaStepTests
{
    private const string Header = """
        vfiolab: 1
        name: t
        host: { memory: 64MiB }
        devices:
          - { name: gpu, address: "0000:01:00.0", group: 1, bars: [ { index: 0, size: 1MiB } ] }
        processes:
          - { name: p }
        steps:

        """;

    private static List<StepReport> Run(string steps, Action<ScenarioSession>? setUp = null)
    {
        ScenarioDocument doc = ScenarioParser.Parse(Header + steps, "t.yaml");
        var session = new ScenarioSession(doc, new RunOptions());
        setUp?.Invoke(session);
        var reports = new List<StepReport>();
        for (int i = 0; i < doc.Steps.Count; i++)
        {
            reports.Add(session.Execute(i));
        }
        return reports;
    }

    private static string Problems(IEnumerable<StepReport> reports) => string.Join("\n", reports.SelectMany(s => s.Problems));

    /// <summary>Attaches a domain to the GPU's group and maps IOVA 0 to one RAM frame, read-write.</summary>
    private static void MapOneFrame(ScenarioSession session)
    {
        IommuGroup group = session.Host.Simulated.Devices["gpu"].Group;
        Assert.Equal(Errno.None, group.TryAllocateDomain(out IommuDomain? domain));
        Assert.Equal(Errno.None, group.Attach(domain!));
        Assert.True(session.Host.Simulated.Machine.Memory.TryAllocateRun(1, out PfnRun run));
        Assert.Equal(Errno.None, domain!.Map(new Iova(0), new PhysAddr(run.First.Value << 12), 1UL << 12, IommuProt.ReadWrite));
    }

    [Fact]
    public void Dma_UnmappedIovaWithoutDomain_ExpectFaultPasses()
    {
        ScenarioSession? session = null;
        List<StepReport> r = Run("""
              - dma: { device: gpu, op: read, iova: 0xdead0000, size: 4, expect: fault }
              - dma: { device: gpu, op: write, iova: 0xdead0000, size: 4, data: "01 02 03 04", expect: fault }
            """, s => session = s);

        Assert.True(r.TrueForAll(s => s.Passed), Problems(r));
        Assert.Contains("no-domain", r[0].Outcome);
        Assert.Equal(2, session!.Host.Simulated.DmaFaults.Count);
    }

    [Fact]
    public void Dma_Fault_ReturnsFaultFields()
    {
        List<StepReport> r = Run("""
              - dma: { device: gpu, op: write, iova: 0x2000, fill: 0xab, size: 16, expect: { fault: true, fault_iova: 0x2000, reason: no-domain, bytes: 0 } }
            """);

        Assert.True(r[0].Passed, Problems(r));
    }

    [Fact]
    public void Dma_ExpectOkButFaults_FailsWithClearMessage()
    {
        List<StepReport> r = Run("""
              - dma: { device: gpu, op: read, iova: 0x1000, size: 4 }
              - dma: { device: gpu, op: write, iova: 0x1000, seed: 7, size: 8, expect: ok }
            """);

        Assert.False(r[0].Passed);
        Assert.Contains("expected the DMA to complete, but gpu (0000:01:00.0) DMA read at iova 0x1000 faulted at iova 0x1000 (no-domain) after 0x0 bytes",
            r[0].Problems[0]);
        Assert.False(r[1].Passed);
        Assert.Contains("expected the DMA to complete", r[1].Problems[0]);
    }

    [Fact]
    public void Dma_ExpectDataButFaults_FailsNamingTheFault()
    {
        List<StepReport> r = Run("""
              - dma: { device: gpu, op: read, iova: 0, size: 2, expect: { data: "0000" } }
            """);

        Assert.False(r[0].Passed);
        Assert.Contains("expected { data }, but gpu", r[0].Problems[0]);
        Assert.Contains("(no-domain)", r[0].Problems[0]);
    }

    [Fact]
    public void Dma_ExpectFaultButCompletes_Fails()
    {
        List<StepReport> r = Run("""
              - dma: { device: gpu, op: read, iova: 0, size: 4, expect: fault }
            """, MapOneFrame);

        Assert.False(r[0].Passed);
        Assert.Contains("expected a fault", r[0].Problems[0]);
    }

    [Fact]
    public void Dma_MappedRam_WriteThenReadBack()
    {
        List<StepReport> r = Run("""
              - dma: { device: gpu, op: write, iova: 0x10, data: "de ad be ef", expect: { bytes: 4, fault: false } }
              - dma: { device: gpu, op: read, iova: 0x0e, size: 8, expect: { data: "0000deadbeef0000" } }
              - dma: { device: gpu, op: read, iova: 0xffe, size: 4, expect: { bytes: 2, fault_iova: 0x1000, reason: not-mapped } }
            """, MapOneFrame);

        Assert.True(r.TrueForAll(s => s.Passed), Problems(r));
    }

    [Fact]
    public void Dma_ReadWithoutSize_FailsTheStep()
    {
        List<StepReport> r = Run("""
              - dma: { device: gpu, op: read, iova: 0, expect: fault }
            """);

        Assert.Contains("a dma read needs size", r[0].Problems[0]);
    }

    [Fact]
    public void Dma_ReadWithData_FailsTheStep()
    {
        List<StepReport> r = Run("""
              - dma: { device: gpu, op: read, iova: 0, size: 1, data: "00", expect: fault }
            """);

        Assert.Contains("a dma read takes size, not data", r[0].Problems[0]);
    }

    [Fact]
    public void Dma_WriteSizeDisagreesWithData_FailsTheStep()
    {
        List<StepReport> r = Run("""
              - dma: { device: gpu, op: write, iova: 0, size: 3, data: "01 02", expect: fault }
            """);

        Assert.Contains("does not match the 0x2 bytes of data", r[0].Problems[0]);
    }

    [Fact]
    public void Dma_WriteWithoutData_FailsTheStep()
    {
        List<StepReport> r = Run("""
              - dma: { device: gpu, op: write, iova: 0, expect: fault }
            """);

        Assert.Contains("a dma write needs data, or fill or seed with size", r[0].Problems[0]);
    }

    [Fact]
    public void Dma_UnpluggedDevice_FailsTheStep()
    {
        List<StepReport> r = Run("""
              - unplug: { device: gpu }
              - dma: { device: gpu, op: read, iova: 0, size: 1, expect: fault }
            """);

        Assert.True(r[0].Passed, Problems(r));
        Assert.Contains("was unplugged", r[1].Problems[0]);
    }
}
