using VfioLab.Lab;
using VfioLab.Scenarios.Conformance;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>Devices acting on their own: DMA through the IOMMU.</summary>
internal sealed partial class ScenarioSession
{
    /// <summary>Result fields that show a scenario author expects the DMA may stop early, so a fault is
    /// judged by comparing them rather than failing the step outright.</summary>
    private static readonly string[] DmaFaultFields = ["fault", "fault_iova", "reason", "bytes"];

    /// <summary>
    /// <c>dma</c>: the device reads or writes through its IOMMU group (<see cref="LabDevice.DmaRead"/>,
    /// <see cref="LabDevice.DmaWrite"/>). Returns <c>bytes</c> (moved before any fault), <c>fault</c>, for a read
    /// <c>data</c> (the bytes that arrived), and on a fault <c>fault_iova</c> and <c>reason</c>. A fault is not an
    /// errno: it satisfies <c>expect: fault</c>, fails <c>expect: ok</c>, and fails a field map that names none of
    /// <c>fault</c>, <c>fault_iova</c>, <c>reason</c>, <c>bytes</c>.
    /// </summary>
    private StepResult Dma(ScenarioStep step)
    {
        if (_real is not null)
        {
            return RealDma(step);
        }
        LabDevice device = DeviceOf(step.Args);
        if (!device.IsPresent)
        {
            throw new StepFailure(step.Args.GetLocation("device"), $"device {device.Name} was unplugged; it issues no DMA");
        }
        bool write = step.Args.GetString("op") == "write";
        ulong iova = Value(step, "iova");
        LabDmaResult dma = write ? DmaWrite(step, device, iova) : DmaRead(step, device, iova);

        StepResult r = Syscall(0);
        r.Set("bytes", dma.Bytes);
        r.Set("fault", !dma.Ok);
        if (!write)
        {
            r.Set("data", ResultValue.FromBytes(dma.Data));
        }
        string op = write ? "write" : "read";
        if (dma is { FaultIova: { } faultIova, FaultReason: { } faultReason })
        {
            string reason = ReasonName(faultReason);
            r.Set("fault_iova", faultIova);
            r.Set("reason", reason);
            r.Set("summary", $"fault at iova 0x{faultIova:x} ({reason}) after 0x{dma.Bytes:x} bytes");
            string? problem = FaultProblem(step.Expect);
            if (problem is not null)
            {
                throw new StepFailure(step.Location,
                    $"{problem}, but {device.Name} ({device.Address}) DMA {op} at iova 0x{iova:x} faulted at iova 0x{faultIova:x} ({reason}) after 0x{dma.Bytes:x} bytes");
            }
        }
        else
        {
            r.Set("summary", $"{op} 0x{dma.Bytes:x} bytes");
        }
        return r;
    }

    /// <summary><c>dma</c> on a real kernel: the device behind the scenario device's open fd moves the bytes. A real
    /// device learns nothing of an IOMMU fault (a blocked write does not land, a blocked read hands it zeros), so the
    /// result has <c>bytes</c> and, for a read, <c>data</c>: the fault fields are the model's alone.</summary>
    private StepResult RealDma(ScenarioStep step)
    {
        string name = step.Args.GetString("device");
        int fd = _real!.DeviceFdOf(name) ?? throw new StepFailure(step.Args.GetLocation("device"),
            $"no open device fd of {name}: a real device's DMA is driven through one (get_device_fd first)");
        int container = _real.ContainerFdOf(name) ?? throw new StepFailure(step.Args.GetLocation("device"),
            $"the group of {name} was set into no container before its fd was opened");
        bool write = step.Args.GetString("op") == "write";
        ulong iova = Value(step, "iova");
        RealDma dma;
        ulong bytes;
        if (write)
        {
            byte[] data = DataOf(step);
            dma = _real.Kernel.DmaWrite(name, fd, container, iova, data);
            bytes = (ulong)data.Length;
        }
        else
        {
            ulong size = step.Has("size") ? Value(step, "size") : throw new StepFailure(step.Location, "a dma read needs size");
            dma = _real.Kernel.DmaRead(name, fd, container, iova, (int)Math.Min(size, MaxTransfer));
            bytes = size;
        }
        if (dma.CannotReason is { } reason)
        {
            throw new RealStepUnavailable(reason);
        }
        if (step.Expect.Kind == StepExpectationKind.Fault || FaultProblem(step.Expect) is null && step.Expect.Kind == StepExpectationKind.Fields)
        {
            throw new RealStepUnavailable($"the DMA was issued, but whether it faulted is the model's to say (a real device is told of no IOMMU fault)");
        }
        StepResult r = Syscall(0);
        r.Set("bytes", bytes);
        if (!write)
        {
            r.Set("data", ResultValue.FromBytes(dma.Data));
        }
        r.Set("summary", $"{(write ? "write" : "read")} 0x{bytes:x} bytes");
        return r;
    }

    private LabDmaResult DmaWrite(ScenarioStep step, LabDevice device, ulong iova)
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
        return device.DmaWrite(iova, data);
    }

    private LabDmaResult DmaRead(ScenarioStep step, LabDevice device, ulong iova)
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
        return device.DmaRead(iova, size);
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

    /// <summary>The scenario spelling of a fault reason (SCENARIOS.md's <c>reason:</c>, kebab-case like the invariant names).</summary>
    private static string ReasonName(DmaFaultReason reason) => reason switch
    {
        DmaFaultReason.NotMapped => "not-mapped",
        DmaFaultReason.ReadDenied => "read-denied",
        DmaFaultReason.WriteDenied => "write-denied",
        DmaFaultReason.NoDomain => "no-domain",
        DmaFaultReason.NoIommu => "no-iommu",
        DmaFaultReason.UnsupportedRequest => "unsupported-request",
        _ => reason.ToString(),
    };
}
