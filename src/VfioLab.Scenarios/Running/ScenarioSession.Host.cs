using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Scenarios.Model;
using VfioLab.Simulation;
using VfioLab.Vfio;

namespace VfioLab.Scenarios.Running;

/// <summary>Host and driver actions, and checks of the model's state.</summary>
internal sealed partial class ScenarioSession
{
    /// <summary><c>device_release</c>: every fd of the device, in every process, is closed so the
    /// driver's release runs, and its CPU mappings are revoked (later access is SIGBUS).</summary>
    private StepResult DeviceRelease(ScenarioStep step)
    {
        SimulatedDevice device = DeviceOf(step.Args);
        int closed = SimulatedHostActions.ReleaseDevice(Host, device);
        StepResult r = Syscall(0);
        r.Set("closed", (ulong)closed);
        r.Set("summary", $"closed {closed} fd(s)");
        return r;
    }

    /// <summary><c>unplug</c>: the device is released, then removed from its group and the bus.</summary>
    private StepResult Unplug(ScenarioStep step)
    {
        SimulatedDevice device = DeviceOf(step.Args);
        int closed = SimulatedHostActions.Unplug(Host, device);
        StepResult r = Syscall(0);
        r.Set("closed", (ulong)closed);
        return r;
    }

    /// <summary><c>run_deferred_work</c>: runs every queued work item (the seeds profile's deferred
    /// notifier unregistration and device reference drop); returns <c>ran</c>, how many ran.</summary>
    private StepResult RunDeferredWork()
    {
        int ran = Host.Machine.Work.RunAll();
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
        string item = step.Args.Names[0];
        StepArgs args = item == "pinned_pages" || item == "invariants" ? step.Args : step.Args.GetMap(item);
        return item switch
        {
            "locked_vm" => CheckLockedVm(args),
            "pinned_pages" => Compare("pinned_pages", Host.Machine.Memory.PinnedFrameCount, Value(step, "pinned_pages"), step.Location),
            "mappings" => CheckBackendCount(args, "mappings"),
            "dma_avail" => CheckBackendCount(args, "dma_avail"),
            "iommu_entries" => CheckIommuEntries(args),
            "translate" => CheckTranslate(args),
            "invariants" => CheckInvariantsClean(step),
            _ => throw new StepFailure(step.Location, $"unknown check '{item}'"),
        };
    }

    private StepResult CheckLockedVm(StepArgs args)
    {
        string name = args.GetString("process");
        if (!_processes.TryGetValue(name, out Process? p))
        {
            throw new StepFailure(args.GetLocation("process"), $"no process named '{name}'");
        }
        ulong pages = p.LastMm.LockedVm;
        return Compare($"locked_vm of {name}", pages << Host.Machine.PageShift, Value(args, "bytes"), args.Location);
    }

    private StepResult CheckBackendCount(StepArgs args, string what)
    {
        int fd = (int)Math.Min(Value(args, "fd"), int.MaxValue);
        Process p = _processes.Values.First();
        VfioContainer container = ContainerOf(p, fd, args);
        ulong expected = Value(args, "count");
        if (container.Iommu is null)
        {
            if (what == "mappings")
            {
                return Compare("mappings", 0, expected, args.Location);
            }
            throw new StepFailure(args.Location, "dma_avail needs a container with an IOMMU backend set");
        }
        if (container.Iommu is not IVfioIommuInspection inspect)
        {
            throw new StepFailure(args.Location, $"the container's backend does not report {what}");
        }
        return Compare(what, what == "mappings" ? inspect.MappingCount : inspect.DmaAvail, expected, args.Location);
    }

    private VfioContainer ContainerOf(Process p, int fd, StepArgs args)
    {
        foreach (Process candidate in _processes.Values.Prepend(p))
        {
            if (candidate.IsAlive && candidate.Fds.TryGet(fd, out OpenFile file))
            {
                file.Put();
                if (file.Operations is VfioContainerFile c)
                {
                    return c.Container;
                }
            }
        }
        throw new StepFailure(args.GetLocation("fd"), $"fd {fd} is not a container in any process");
    }

    private StepResult CheckIommuEntries(StepArgs args)
    {
        SimulatedDevice device = DeviceOfArgs(args);
        // A sPAPR PE counts its valid TCEs over every window; other groups the leaf IOPTEs of their domain.
        ulong entries = device.Group.TableGroup?.ValidEntries ?? device.Group.Domain?.TotalEntries ?? 0;
        return Compare($"IOMMU entries of {device.Name}", entries, Value(args, "count"), args.Location);
    }

    private StepResult CheckTranslate(StepArgs args)
    {
        SimulatedDevice device = DeviceOfArgs(args);
        ulong iova = Value(args, "iova");
        IommuTranslation t = IommuDma.Translate(device.Group, new Iova(iova), write: false);
        StepResult r = Syscall(0);
        r.Set("fault", !t.Ok);
        if (t.Ok)
        {
            r.Set("phys", t.Phys.Value);
        }
        StepExpectation expect = args.GetExpectation("expect");
        if (expect.Kind == StepExpectationKind.Fault && t.Ok)
        {
            throw new StepFailure(args.Location, $"expected iova 0x{iova:x} of {device.Name} to fault, it translates to 0x{t.Phys.Value:x}");
        }
        if (expect.Kind == StepExpectationKind.Fields)
        {
            if (!t.Ok)
            {
                throw new StepFailure(args.Location, $"iova 0x{iova:x} of {device.Name} does not translate ({t.Fault})");
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
        IReadOnlyList<Checks.InvariantViolation> found = _checker.Check();
        if (found.Count > 0)
        {
            throw new StepFailure(step.Location, "invariants broken: " + string.Join("; ", found.Select(v => $"{v.Invariant}: {v.Message}")));
        }
        StepResult r = Syscall(0);
        r.Set("summary", "invariants clean");
        return r;
    }

    private SimulatedDevice DeviceOfArgs(StepArgs args) => DeviceOf(args);

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
