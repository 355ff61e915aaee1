using VfioLab.Lab;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>Host and driver actions, and checks of the model's state.</summary>
internal sealed partial class ScenarioSession
{
    /// <summary><c>device_release</c>: every fd of the device, in every process, is closed so the
    /// driver's release runs, and its CPU mappings are revoked (later access is SIGBUS).</summary>
    private StepResult DeviceRelease(ScenarioStep step)
    {
        int closed = DeviceOf(step.Args).Release();
        StepResult r = Syscall(0);
        r.Set("closed", (ulong)closed);
        r.Set("summary", $"closed {closed} fd(s)");
        return r;
    }

    /// <summary><c>unplug</c>: the device is released, then removed from its group and the bus.</summary>
    private StepResult Unplug(ScenarioStep step)
    {
        int closed = DeviceOf(step.Args).Unplug();
        StepResult r = Syscall(0);
        r.Set("closed", (ulong)closed);
        return r;
    }

    /// <summary><c>run_deferred_work</c>: runs every queued work item (the seeds profile's deferred
    /// notifier unregistration and device reference drop); returns <c>ran</c>, how many ran.</summary>
    private StepResult RunDeferredWork()
    {
        int ran = Host.RunDeferredWork();
        StepResult r = Syscall(0);
        r.Set("ran", (ulong)ran);
        r.Set("summary", $"ran {ran} work item(s)");
        return r;
    }

    private StepResult ExpectViolation(ScenarioStep step)
    {
        string name = step.Args.GetString("invariant");
        StepResult r = Syscall(0);
        if (!_options.CheckInvariants)
        {
            r.Set("summary", "not checked (--no-check)");
            return r;
        }
        if (!_acknowledged.Contains(name))
        {
            throw new StepFailure(step.Location, $"invariant {name} was expected to be reported after the previous step, but it holds");
        }
        r.Set("summary", $"{name} reported, as expected");
        return r;
    }

    private StepResult Check(ScenarioStep step)
    {
        // The parser lets a check hold exactly one item and nothing else.
        string item = Parsing.StepSchema.CheckItems.First(step.Has);
        StepArgs args = item == "pinned_pages" || item == "invariants" ? step.Args : step.Args.GetMap(item);
        return item switch
        {
            "locked_vm" => CheckLockedVm(args),
            "pinned_pages" => Compare("pinned_pages", Host.PinnedPages, Value(step, "pinned_pages"), step.Location),
            "mappings" => CheckBackendCount(args, "mappings"),
            "dma_avail" => CheckBackendCount(args, "dma_avail"),
            "iommu_entries" => CheckIommuEntries(args),
            "translate" => CheckTranslate(args),
            "invariants" => CheckInvariantsClean(step),
            _ => throw new StepFailure(step.Location, $"unknown check '{item}'"),
        };
    }

    // Without `bytes` the value is reported, not judged, in the result field `locked_vm`: for a count that differs by
    // kernel (a read-only MAP of untouched memory is charged since v6.2), which `vfiolab conform` compares with the model
    // under the kernel's own profile.
    private StepResult CheckLockedVm(StepArgs args)
    {
        string name = args.GetString("process");
        ulong actual;
        if (_real is not null)
        {
            actual = _real.LockedVmOf(name);
        }
        else if (_processes.TryGetValue(name, out LabProcess? p))
        {
            actual = p.LockedVmBytes;
        }
        else
        {
            throw new StepFailure(args.GetLocation("process"), $"no process named '{name}'");
        }
        if (args.Has("bytes"))
        {
            return Compare($"locked_vm of {name}", actual, Value(args, "bytes"), args.Location);
        }
        StepResult r = Syscall(0);
        r.Set("locked_vm", ResultValue.FromUInt64(actual));
        r.Set("summary", $"locked_vm of {name} = {actual} (reported, not judged)");
        return r;
    }

    private StepResult CheckBackendCount(StepArgs args, string what)
    {
        int fd = (int)Math.Min(Value(args, "fd"), int.MaxValue);
        LabProcess p = _processes.Values.First();
        LabContainer container = ContainerOf(p, fd, args);
        ulong expected = Value(args, "count");
        if (container.Backend is null)
        {
            if (what == "mappings")
            {
                return Compare("mappings", 0, expected, args.Location);
            }
            throw new StepFailure(args.Location, "dma_avail needs a container with an IOMMU backend set");
        }
        if (container.DmaAvail is not { } dmaAvail)
        {
            throw new StepFailure(args.Location, $"the container's backend does not report {what}");
        }
        return Compare(what, what == "mappings" ? container.MappingCount : dmaAvail, expected, args.Location);
    }

    private LabContainer ContainerOf(LabProcess p, int fd, StepArgs args)
    {
        foreach (LabProcess candidate in _processes.Values.Prepend(p))
        {
            if (candidate.ContainerOf(fd) is { } container)
            {
                return container;
            }
        }
        throw new StepFailure(args.GetLocation("fd"), $"fd {fd} is not a container in any process");
    }

    private StepResult CheckIommuEntries(StepArgs args)
    {
        LabDevice device = DeviceOf(args);
        // A sPAPR PE counts its valid TCEs over every window; other groups the leaf IOPTEs of their domain.
        return Compare($"IOMMU entries of {device.Name}", device.IommuEntries, Value(args, "count"), args.Location);
    }

    private StepResult CheckTranslate(StepArgs args)
    {
        LabDevice device = DeviceOf(args);
        ulong iova = Value(args, "iova");
        LabTranslation t = device.Translate(iova);
        StepResult r = Syscall(0);
        r.Set("fault", !t.Ok);
        if (t.Ok)
        {
            r.Set("phys", t.Physical);
        }
        StepExpectation expect = args.GetExpectation("expect");
        if (expect.Kind == StepExpectationKind.Fault && t.Ok)
        {
            throw new StepFailure(args.Location, $"expected iova 0x{iova:x} of {device.Name} to fault, it translates to 0x{t.Physical:x}");
        }
        if (expect.Kind == StepExpectationKind.Fields)
        {
            if (!t.Ok)
            {
                throw new StepFailure(args.Location, $"iova 0x{iova:x} of {device.Name} does not translate ({t.FaultReason})");
            }
            IReadOnlyList<string> problems = ExpectMatcher.Match(expect.Fields!, r, Lookup);
            if (problems.Count > 0)
            {
                throw new StepFailure(args.Location, string.Join("; ", problems));
            }
        }
        return r;
    }

    private StepResult CheckInvariantsClean(ScenarioStep step)
    {
        IReadOnlyList<LabViolation> found = Host.CheckInvariants();
        if (found.Count > 0)
        {
            throw new StepFailure(step.Location, "invariants broken: " + string.Join("; ", found.Select(v => $"{v.Invariant}: {v.Message}")));
        }
        StepResult r = Syscall(0);
        r.Set("summary", "invariants clean");
        return r;
    }

    private static StepResult Compare(string what, ulong actual, ulong expected, SourceLocation location)
    {
        if (actual != expected)
        {
            throw new StepFailure(location, $"{what} is 0x{actual:x} ({actual}), expected 0x{expected:x} ({expected})");
        }
        StepResult r = Syscall(0);
        r.Set("summary", $"{what} = {actual}");
        return r;
    }
}
