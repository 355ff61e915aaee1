using VfioLab.Addressing;
using VfioLab.Iommu;
using VfioLab.Scenarios.Model;
using VfioLab.Simulation;

namespace VfioLab.Scenarios.Running;

/// <summary>Devices acting on their own: DMA through the IOMMU.</summary>
internal sealed partial class ScenarioSession
{
    /// <summary>Result fields that show a scenario author expects the DMA may stop early, so a fault is
    /// judged by comparing them rather than failing the step outright.</summary>
    private static readonly string[] DmaFaultFields = ["fault", "fault_iova", "reason", "bytes"];

    /// <summary>
    /// <c>dma</c>: the device reads or writes through its IOMMU group (<see cref="DeviceDma"/>).
    /// Returns <c>bytes</c> (moved before any fault), <c>fault</c>, for a read <c>data</c> (the bytes
    /// that arrived), and on a fault <c>fault_iova</c> and <c>reason</c>. A fault is not an errno: it
    /// satisfies <c>expect: fault</c>, fails <c>expect: ok</c>, and fails a field map that names none
    /// of <c>fault</c>, <c>fault_iova</c>, <c>reason</c>, <c>bytes</c>.
    /// </summary>
    private StepResult Dma(ScenarioStep step)
    {
        SimulatedDevice device = DeviceOf(step.Args);
        if (device.Group.FindMember(device.DeviceName) is null)
        {
            throw new StepFailure(step.Args.GetLocation("device"), $"device {device.Name} was unplugged; it issues no DMA");
        }
        bool write = step.Args.GetString("op") == "write";
        var iova = new Iova(Value(step, "iova"));
        DeviceDmaResult dma = write ? DmaWrite(step, device, iova) : DmaRead(step, device, iova);

        StepResult r = Syscall(0);
        r.Set("bytes", dma.Bytes);
        r.Set("fault", !dma.Ok);
        if (!write)
        {
            r.Set("data", ResultValue.FromBytes(dma.Data));
        }
        string op = write ? "write" : "read";
        if (dma.Fault is { } fault)
        {
            string reason = ReasonName(fault.Reason);
            r.Set("fault_iova", fault.Iova.Value);
            r.Set("reason", reason);
            r.Set("summary", $"fault at iova 0x{fault.Iova.Value:x} ({reason}) after 0x{dma.Bytes:x} bytes");
            string? problem = FaultProblem(step.Expect);
            if (problem is not null)
            {
                throw new StepFailure(step.Location,
                    $"{problem}, but {device.Name} ({device.DeviceName}) DMA {op} at iova {iova} faulted at iova 0x{fault.Iova.Value:x} ({reason}) after 0x{dma.Bytes:x} bytes");
            }
        }
        else
        {
            r.Set("summary", $"{op} 0x{dma.Bytes:x} bytes");
        }
        return r;
    }

    private DeviceDmaResult DmaWrite(ScenarioStep step, SimulatedDevice device, Iova iova)
    {
        if (!step.Has("data") && !step.Has("fill") && !step.Has("seed"))
        {
            throw new StepFailure(step.Location, "a dma write needs data, or fill or seed with size");
        }
        byte[] data = DataOf(step);
        if (step.Has("data") && step.Has("size") && Value(step, "size") != (ulong)data.Length)
        {
            throw new StepFailure(step.Args.GetLocation("size"), $"size 0x{Value(step, "size"):x} does not match the 0x{data.Length:x} bytes of data");
        }
        return DeviceDma.Write(Host, device, iova, data);
    }

    private DeviceDmaResult DmaRead(ScenarioStep step, SimulatedDevice device, Iova iova)
    {
        foreach (string field in (ReadOnlySpan<string>)["data", "fill", "seed"])
        {
            if (step.Has(field))
            {
                throw new StepFailure(step.Args.GetLocation(field), $"a dma read takes size, not {field}");
            }
        }
        if (!step.Has("size"))
        {
            throw new StepFailure(step.Location, "a dma read needs size");
        }
        ulong size = Value(step, "size");
        if (size > MaxTransfer)
        {
            throw new StepFailure(step.Args.GetLocation("size"), $"dma of 0x{size:x} bytes exceeds the 64 MiB a step may move");
        }
        return DeviceDma.Read(Host, device, iova, size);
    }

    /// <summary>Why a faulted DMA misses <paramref name="expect"/> before any field is compared, or null
    /// when the judge can decide (<c>fault</c>, an errno, or a map naming a fault field).</summary>
    private static string? FaultProblem(StepExpectation expect)
    {
        switch (expect.Kind)
        {
            case StepExpectationKind.Ok:
                return "expected the DMA to complete";
            case StepExpectationKind.Fields:
                foreach (string field in DmaFaultFields)
                {
                    if (expect.Fields!.Get(field) is not null)
                    {
                        return null;
                    }
                }
                return $"expected {expect}";
            default:
                return null;
        }
    }

    /// <summary>The scenario spelling of a fault reason (kebab-case, like the invariant names).</summary>
    private static string ReasonName(IommuFaultReason reason) => reason switch
    {
        IommuFaultReason.NotMapped => "not-mapped",
        IommuFaultReason.ReadDenied => "read-denied",
        IommuFaultReason.WriteDenied => "write-denied",
        IommuFaultReason.NoDomain => "no-domain",
        IommuFaultReason.NoIommu => "no-iommu",
        IommuFaultReason.UnsupportedRequest => "unsupported-request",
        _ => reason.ToString(),
    };
}
