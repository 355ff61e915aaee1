using VfioLab.Scenarios.Model;
using VfioLab.Scenarios.Running;

namespace VfioLab.Scenarios.Conformance;

/// <summary>
/// A scenario beside a real kernel: what machine it needs (<see cref="Describe"/>), the model's view of the machine
/// the real kernel runs on (<see cref="ForMachine"/>), and the same steps run through a real kernel
/// (<see cref="RunOnRealKernel"/>): argument decoding and expectation judging are the model runner's own, so the two
/// results differ only where the kernels do.
/// </summary>
public static class ScenarioConformance
{
    /// <summary>What a real machine must offer to run <paramref name="document"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="document"/> is null.</exception>
    public static ScenarioTopology Describe(ScenarioDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        HostSpec h = document.Host;
        var devices = document.Devices.Select(d => new TopologyDevice(d.Name, d.Address, SpecNames.NameOf(SpecNames.Driver, d.Driver), d.Group,
            [.. d.Bars.Select(b => new KeyValuePair<int, ulong>(b.Index, b.Size))], d.Iommu is not null || d.IommuPageSizes is not null)).ToList();
        bool huge2 = false, huge1 = false, forks = false;
        foreach (ScenarioStep step in document.Steps)
        {
            forks |= step.Kind == "fork";
            if (step.Kind == "mmap")
            {
                string? backing = step.Args.GetStringOrNull("backing");
                huge2 |= backing == "hugetlb-2m";
                huge1 |= backing == "hugetlb-1g";
            }
        }
        return new ScenarioTopology(h.Memory, h.PageSize, SpecNames.NameOf(SpecNames.Iommu, h.Iommu), devices, document.Processes.Count,
            h.Params.DmaEntryLimit, h.Params.DisableHugepages, huge2, huge1, h.Quirks)
        {
            Forks = forks,
        };
    }

    /// <summary>The scenario as the model should run it beside a real machine: under kernel profile
    /// <paramref name="kernel"/>, with the IOVA aperture ending at <paramref name="apertureLast"/> and the IOMMU page
    /// sizes <paramref name="iommuPageSizes"/> of the machine's IOMMU; everything else as written.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="kernel"/> is not a kernel profile.</exception>
    public static ScenarioDocument ForMachine(ScenarioDocument document, string kernel, ulong apertureLast, IReadOnlyList<ulong> iommuPageSizes)
    {
        ArgumentNullException.ThrowIfNull(document);
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(iommuPageSizes);
        if (!Lab.KernelProfiles.All.Contains(kernel, StringComparer.Ordinal))
        {
            throw new ArgumentException($"'{kernel}' is not a kernel profile ({string.Join(", ", Lab.KernelProfiles.All)})", nameof(kernel));
        }
        var at = new SourceLocation(document.File, 1, 1);
        HostSpec host = document.Host with
        {
            Kernel = kernel,
            Aperture = new AddressRangeSpec(0, apertureLast, at),
            IommuPageSizes = [.. iommuPageSizes],
        };
        return new ScenarioDocument(document.Name, document.Description, document.File, host, document.Devices, document.Processes, document.Steps);
    }

    /// <summary>Runs every step of <paramref name="document"/> through <paramref name="kernel"/> as its first process
    /// (and the children it forks, when <see cref="IRealKernel.CannotFork"/> is null), judging each against its
    /// expectation as the model runner does. A step the real kernel cannot answer (invariants, IOMMU entry counts,
    /// translations, mdev, sPAPR, deferred work, the mmap lock, another declared process, a fork the kernel's process
    /// cannot make) is not run: its report says why in <see cref="StepReport.ModelOnly"/>. No invariant is checked.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ScenarioParseException">The scenario's host cannot be built.</exception>
    public static ScenarioOutcome RunOnRealKernel(ScenarioDocument document, IRealKernel kernel, IScenarioReporter? reporter = null)
    {
        ArgumentNullException.ThrowIfNull(document);
        ArgumentNullException.ThrowIfNull(kernel);
        var options = new RunOptions { CheckInvariants = false };
        var session = new ScenarioSession(document, options, new RealKernelBackend(document, kernel));
        reporter?.Started(document.Name, document.Description ?? string.Empty, document.Steps.Count);
        var reports = new List<StepReport>(document.Steps.Count);
        try
        {
            for (int i = 0; i < document.Steps.Count; i++)
            {
                StepReport report = session.Execute(i);
                reports.Add(report);
                reporter?.StepFinished(report);
            }
        }
        finally
        {
            session.EndRealRun();
        }
        var outcome = new ScenarioOutcome(reports, 0, null);
        reporter?.Finished(outcome);
        return outcome;
    }
}
