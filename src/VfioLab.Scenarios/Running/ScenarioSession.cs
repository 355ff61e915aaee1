using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>
/// The state of one scenario run: the simulated host (built and driven through the model's public API,
/// <see cref="LabHost"/>), the processes by name, the names bound by <c>as:</c>, and which invariant violations
/// have been acknowledged by <c>expect_violation</c>.
/// Each step kind is one method (partial files by concern); a step returns a <see cref="StepResult"/>
/// whose fields the step's <c>expect</c> is compared with.
/// </summary>
/// <remarks>Single-threaded: one step at a time.</remarks>
internal sealed partial class ScenarioSession
{
    private readonly ScenarioDocument _doc;
    private readonly RunOptions _options;
    private readonly Dictionary<string, LabProcess> _processes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ulong> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _acknowledged = new(StringComparer.Ordinal);

    /// <summary>The real kernel the steps run on instead of the model's processes, or null (the model).</summary>
    private readonly RealKernelBackend? _real;

    public ScenarioSession(ScenarioDocument doc, RunOptions options)
    {
        _doc = doc;
        _options = options;
        Host = ScenarioHostFactory.Build(doc);
        foreach (LabProcess p in Host.Processes)
        {
            _processes[p.Name] = p;
            _values[p.Name] = (ulong)p.Pid;
        }
    }

    /// <summary>A session whose steps run on a real kernel (<see cref="RealKernelBackend"/>): the host is still built
    /// from the scenario (it validates the set-up), but no step's call reaches it, and what only the model can
    /// answer is reported as model-only.</summary>
    public ScenarioSession(ScenarioDocument doc, RunOptions options, RealKernelBackend real)
        : this(doc, options)
    {
        _real = real;
        if (_processes.Count > 0)
        {
            real.Begin(_processes.Keys.First());
        }
    }

    /// <summary>The simulated host.</summary>
    public LabHost Host { get; }

    /// <summary>Invariant violations that no <c>expect_violation</c> announced.</summary>
    public int UnexpectedViolations { get; private set; }

    /// <summary>Executes step <paramref name="index"/> and judges it.</summary>
    public StepReport Execute(int index)
    {
        ScenarioStep step = _doc.Steps[index];
        if (_real?.ModelOnlyReason(step) is { } modelOnly)
        {
            return new StepReport(index, step.Location, step.Kind, DescribeStep(step), "model-only", [])
            {
                Process = step.Process,
                Expectation = step.Expect.ToString(),
                ModelOnly = modelOnly,
            };
        }
        var problems = new List<string>();
        StepResult? result = null;
        try
        {
            result = Dispatch(step);
        }
        catch (StepFailure e)
        {
            problems.Add(e.Message);
        }
        catch (RealStepUnavailable e)
        {
            return new StepReport(index, step.Location, step.Kind, DescribeStep(step), "model-only", [])
            {
                Process = step.Process,
                Expectation = step.Expect.ToString(),
                ModelOnly = e.Message,
            };
        }
        catch (ScenarioParseException e)
        {
            problems.Add(e.Message);
        }
        string outcome = result is null ? string.Empty : Describe(result);
        LabRefusal? refusal = RefusalOf(result);
        if (result is not null)
        {
            Judge(step, result, problems, refusal);
            if (step.As is not null && problems.Count == 0 && result.TryGet(BindField, out ResultValue? bound) && bound is not null)
            {
                _values[step.As] = bound.Kind == ResultValueKind.Signed ? (ulong)bound.Signed : bound.Unsigned;
            }
        }
        var violations = new List<StepViolation>();
        var hazards = new List<StepViolation>();
        if (step.Kind != "expect_violation")
        {
            CheckInvariants(index, problems, violations, hazards);
        }
        return new StepReport(index, step.Location, step.Kind, DescribeStep(step), outcome, problems)
        {
            Process = step.Process,
            Expectation = step.Expect.ToString(),
            Result = result,
            Refusal = refusal,
            Violations = violations,
            Hazards = hazards,
        };
    }

    /// <summary>The result field a step's <c>as:</c> binds (an fd, an address, a pid).</summary>
    private const string BindField = StepResult.BindField;

    /// <summary>Why the step's call failed: the host's last refusal when it explains the step's errno (the runner drives
    /// one call at a time, so the host's last failed call is the step's); none on a real kernel.</summary>
    private LabRefusal? RefusalOf(StepResult? result)
    {
        if (_real is not null || result is null || !result.TryGet("errno", out ResultValue? e) || e is null)
        {
            return null;
        }
        LabRefusal? last = Host.LastRefusal;
        return last is not null && last.Errno.ToString() == e.Text ? last : null;
    }

    private void Judge(ScenarioStep step, StepResult result, List<string> problems, LabRefusal? refusal)
    {
        string why = refusal is null ? string.Empty : $": {refusal.Reason} ({refusal.Check})";
        result.TryGet("errno", out ResultValue? errnoValue);
        string? errno = errnoValue?.Text;
        StepExpectation expect = step.Expect;
        switch (expect.Kind)
        {
            case StepExpectationKind.Ok:
                if (errno is not null)
                {
                    problems.Add($"{step.Location}: expected success, got {errno}{why}{Detail(result)}");
                }
                break;
            case StepExpectationKind.Errno:
                if (errno != expect.Errno.ToString())
                {
                    problems.Add($"{step.Location}: expected {expect.Errno}, got {errno ?? "success"}{why}{Detail(result)}");
                }
                break;
            case StepExpectationKind.Fault:
                if (!result.TryGet("fault", out ResultValue? f) || f is null || !f.Bool)
                {
                    problems.Add($"{step.Location}: expected a fault, got {errno ?? "success"}");
                }
                break;
            case StepExpectationKind.Sigbus:
                if (!result.TryGet("sigbus", out ResultValue? s) || s is null || !s.Bool)
                {
                    problems.Add($"{step.Location}: expected SIGBUS, got {errno ?? "success"}");
                }
                break;
            case StepExpectationKind.Fields:
                if (errno is not null && expect.Fields!.Get("errno") is null)
                {
                    problems.Add($"{step.Location}: expected success, got {errno}{why}{Detail(result)}");
                    break;
                }
                problems.AddRange(ExpectMatcher.Match(expect.Fields!, result, Lookup));
                break;
        }
    }

    private void CheckInvariants(int index, List<string> problems, List<StepViolation> violations, List<StepViolation> hazards)
    {
        if (!_options.CheckInvariants)
        {
            return;
        }
        // Every expect_violation step directly after this one announces one invariant this step may break.
        var announced = new HashSet<string>(StringComparer.Ordinal);
        int k = index + 1;
        for (; k < _doc.Steps.Count && _doc.Steps[k].Kind == "expect_violation"; k++)
        {
            announced.Add(_doc.Steps[k].Args.GetString("invariant"));
        }
        // After each step, what the step changed (the incremental check: the same invariants broken as a full sweep,
        // at a cost that follows the step); after the last step that is checked, the full sweep.
        IReadOnlyList<LabViolation> userHazards;
        IReadOnlyList<LabViolation> found = k == _doc.Steps.Count ? Host.CheckInvariants(out userHazards) : Host.CheckChangedInvariants(out userHazards);
        hazards.AddRange(userHazards.Select(h => new StepViolation(h.Invariant, $"{h.Message} ({h.Hazard})")));
        var names = new HashSet<string>(found.Select(v => v.Invariant), StringComparer.Ordinal);
        _acknowledged.RemoveWhere(n => !names.Contains(n) && !announced.Contains(n));
        foreach (LabViolation v in found)
        {
            if (_acknowledged.Contains(v.Invariant))
            {
                continue;
            }
            if (announced.Contains(v.Invariant))
            {
                _acknowledged.Add(v.Invariant);
                continue;
            }
            UnexpectedViolations++;
            problems.Add($"invariant {v.Invariant} broken: {v.Message}");
            violations.Add(new StepViolation(v.Invariant, v.Message));
        }
    }

    /// <summary>Ends a real-kernel run: what the scenario left open is released (<see cref="RealKernelBackend.End"/>).</summary>
    public void EndRealRun() => _real?.End();

    /// <summary>The system calls of <paramref name="p"/>: the model process's, or on a real kernel the real process
    /// that stands for it (the first process and its forked children: <see cref="RealKernelBackend.ModelOnlyReason"/>).</summary>
    private ISyscallSurface SyscallsOf(LabProcess p) => _real is not null ? _real.SyscallsOf(NameOf(p)) : p.Syscalls;

    /// <summary>The name the session knows <paramref name="p"/> by (a forked child keeps its parent's
    /// <see cref="LabProcess.Name"/>; the session knows it by its <c>as:</c> binding).</summary>
    private string NameOf(LabProcess p) => _processes.First(kv => ReferenceEquals(kv.Value, p)).Key;

    private ulong? Lookup(string name) => _values.TryGetValue(name, out ulong v) ? v : null;

    private ulong Resolve(ScenarioValue value)
    {
        if (!value.TryResolve(Lookup, out ulong v, out string? error))
        {
            throw new StepFailure(value.Location, error ?? "cannot resolve value");
        }
        return v;
    }

    private ulong Value(ScenarioStep step, string field) => Resolve(step.GetValue(field));

    private ulong Value(StepArgs args, string field) => Resolve(args.GetValue(field));

    private ulong ValueOr(ScenarioStep step, string field, ulong dflt) => step.Has(field) ? Value(step, field) : dflt;

    /// <summary>A field bound for a u32 of the uAPI struct; a value above 2^32-1 is refused at the field.</summary>
    private uint U32(ScenarioStep step, string field)
    {
        ulong value = Value(step, field);
        return value <= uint.MaxValue
            ? (uint)value
            : throw new StepFailure(step.Args.GetLocation(field), $"{field} 0x{value:x} does not fit the u32 field");
    }

    private int Fd(ScenarioStep step, string field = "fd")
    {
        ulong v = Value(step, field);
        if (v > int.MaxValue)
        {
            throw new StepFailure(step.Args.GetLocation(field), $"{field} 0x{v:x} is not a file descriptor");
        }
        return (int)v;
    }

    private LabProcess ProcessOf(ScenarioStep step)
    {
        string? name = step.Process;
        if (name is null)
        {
            return _processes.Values.First();
        }
        return _processes.TryGetValue(name, out LabProcess? p)
            ? p
            : throw new StepFailure(step.Location, $"no process named '{name}'");
    }

    private LabDevice DeviceOf(StepArgs args, string field = "device")
    {
        string name = args.GetString(field);
        return Host.TryGetDevice(name, out LabDevice? d)
            ? d!
            : throw new StepFailure(args.GetLocation(field), $"no device named '{name}'");
    }

    /// <summary>The result of a system call: <c>result</c>, and <c>errno</c> when it failed.</summary>
    private static StepResult Syscall(long ret)
    {
        var r = new StepResult();
        r.Set("result", ret);
        if (ret < 0)
        {
            r.Set("errno", ErrnoExtensions.FromReturn(ret).ToString());
        }
        return r;
    }

    /// <summary>The result of a system call that makes an fd: <see cref="Syscall"/>, and on success the new fd as
    /// <c>fd</c> and as what the step's <c>as:</c> binds.</summary>
    private static StepResult NewFd(long ret)
    {
        StepResult r = Syscall(ret);
        if (ret >= 0)
        {
            r.Set(BindField, (ulong)ret);
            r.Set("fd", (ulong)ret);
        }
        return r;
    }

    private static string Detail(StepResult result) =>
        result.TryGet("message", out ResultValue? m) && m is not null ? $" ({m.Text})" : string.Empty;

    private static string Describe(StepResult result)
    {
        if (result.TryGet("errno", out ResultValue? e) && e is not null)
        {
            return e.Text;
        }
        if (result.TryGet("summary", out ResultValue? s) && s is not null)
        {
            return s.Text;
        }
        return result.TryGet("result", out ResultValue? r) && r is not null ? r.ToString() : "ok";
    }

    private static string DescribeStep(ScenarioStep step)
    {
        var parts = new List<string>();
        foreach (string name in step.Args.Names)
        {
            if (name is "expect" or "process" or "as")
            {
                continue;
            }
            ScenarioNode node = step.Args.GetNode(name);
            parts.Add(node.Kind == ScenarioNodeKind.Scalar ? $"{name}={node.Text}" : name);
        }
        string proc = step.Process is null ? string.Empty : $"[{step.Process}] ";
        return $"{proc}{step.Kind} {string.Join(' ', parts)}".TrimEnd();
    }
}
