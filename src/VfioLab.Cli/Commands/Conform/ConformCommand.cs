using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using VfioLab.Scenarios;
using VfioLab.Scenarios.Conformance;

namespace VfioLab.Cli.Commands.Conform;

/// <summary>
/// <c>vfiolab conform</c>: each scenario's guest derived from its host section (<see cref="RigPlan"/>, refusing what
/// the rig cannot realise), scenarios batched one boot per combination of devices, module parameters and command line,
/// run in the guest through the real kernel (<see cref="GuestRunner"/>), run on the model under the kernel's profile
/// with the guest IOMMU's aperture and page sizes, and compared step by step (<see cref="StepDiff"/>).
/// </summary>
internal sealed class ConformCommand(CliConsole console)
{
    private sealed class Entry(string file)
    {
        public string File { get; } = file;

        public string? Text { get; set; }

        public ScenarioDocument? Doc { get; set; }

        public RigPlan? Plan { get; set; }

        public string? Refused { get; set; }

        public string? Error { get; set; }

        public List<StepRecord>? Kernel { get; set; }

        public List<StepRecord>? Model { get; set; }
    }

    public int Execute(ConformSettings settings)
    {
        RigMachine? machine = RigMachine.For(settings.Kernel, settings.Iommu, out string? machineProblem);
        if (machine is null)
        {
            console.Error.WriteLine($"vfiolab conform: {machineProblem}");
            return ExitCodes.UsageOrInputError;
        }
        string? rig = settings.Rig ?? FindRig();
        if (rig is null || !File.Exists(Path.Combine(rig, "boot.sh")))
        {
            console.Error.WriteLine("vfiolab conform: no conformance rig found (conformance/boot.sh); give its directory with --rig");
            return ExitCodes.UsageOrInputError;
        }
        List<Entry> entries = [];
        foreach (string path in settings.Paths)
        {
            if (Directory.Exists(path))
            {
                entries.AddRange(Directory.EnumerateFiles(path, "*.yaml").Order(StringComparer.Ordinal).Select(f => new Entry(Path.GetFullPath(f))));
            }
            else if (File.Exists(path))
            {
                entries.Add(new Entry(Path.GetFullPath(path)));
            }
            else
            {
                console.Error.WriteLine($"vfiolab conform: {path}: no such file or directory");
                return ExitCodes.UsageOrInputError;
            }
        }
        bool malformed = false;
        foreach (Entry e in entries)
        {
            try
            {
                // The guest runs this very text, so the two sides cannot see different versions of a file.
                e.Text = File.ReadAllText(e.File);
                e.Doc = ScenarioDocument.Parse(e.Text, e.File);
            }
            catch (ScenarioParseException x)
            {
                console.Error.WriteLine(x.Message);
                malformed = true;
                continue;
            }
            catch (Exception x) when (x is IOException or UnauthorizedAccessException)
            {
                console.Error.WriteLine($"{e.File}: cannot read: {x.Message}");
                malformed = true;
                continue;
            }
            e.Plan = RigPlan.For(e.Doc, out string? refused);
            e.Refused = refused;
        }
        if (malformed)
        {
            return ExitCodes.UsageOrInputError;
        }

        string work = settings.Keep is not null ? Path.GetFullPath(settings.Keep) : Directory.CreateTempSubdirectory("vfiolab-conform-").FullName;
        Directory.CreateDirectory(work);
        var clock = Stopwatch.StartNew();
        string? agent = null;
        if (entries.Any(e => e.Plan is not null && GuestRunner.NeedsAgent(e.Doc!)))
        {
            agent = BuildAgent(rig, out string? agentProblem);
            if (agent is null)
            {
                console.Error.WriteLine($"vfiolab conform: {agentProblem}");
                return ExitCodes.ScenarioFailed;
            }
        }
        int boot = 0;
        // One boot per guest: a scenario whose guest is a prefix of another's (one edu where another has two) joins it.
        List<RigPlan> plans = [.. entries.Where(e => e.Plan is not null).Select(e => e.Plan!)];
        foreach (IGrouping<string, Entry> batch in entries.Where(e => e.Plan is not null)
            .GroupBy(e => plans.Where(e.Plan!.FitsIn).MaxBy(p => p.DeviceSpec.Length)!.Key))
        {
            RigPlan guest = plans.First(p => p.Key == batch.Key);
            Boot(rig, machine, guest, batch.ToList(), agent, Path.Combine(work, $"boot{boot++}"));
        }
        foreach (Entry e in entries.Where(e => e.Doc is not null && e.Plan is not null))
        {
            RunModel(e, machine);
        }
        int code = Report(entries, machine, settings.Json, boot, clock.Elapsed);
        if (settings.Keep is null && code == ExitCodes.Success)
        {
            Directory.Delete(work, recursive: true);
        }
        else if (code != ExitCodes.Success)
        {
            console.Error.WriteLine($"vfiolab conform: manifests and boot files kept in {work}");
        }
        return code;
    }

    /// <summary>The rig's agent (conformance/agent/build.sh: a static C program the guest runs for scenarios that
    /// fork), built if missing or stale: its path, or null and the reason.</summary>
    private static string? BuildAgent(string rig, out string? problem)
    {
        var start = new ProcessStartInfo(Path.Combine(rig, "agent", "build.sh"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        try
        {
            using Process process = Process.Start(start)!;
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            problem = process.ExitCode == 0 && File.Exists(stdout) ? null : $"the rig's agent could not be built: {stderr.Result.Trim()}";
            return problem is null ? stdout : null;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            problem = $"the rig's agent could not be built: {e.Message}";
            return null;
        }
    }

    private void Boot(string rig, RigMachine machine, RigPlan plan, List<Entry> batch, string? agent, string dir)
    {
        Directory.CreateDirectory(dir);
        var manifest = new JsonObject
        {
            ["agent"] = agent,
            ["scenarios"] = new JsonArray([.. batch.Select(e => (JsonNode)new JsonObject
            {
                ["file"] = e.File,
                ["text"] = e.Text,
                ["devices"] = new JsonArray([.. e.Plan!.Devices.Select(d => (JsonNode)new JsonObject { ["address"] = d.Address, ["group"] = d.Group })]),
            })]),
        };
        string manifestPath = Path.Combine(dir, "manifest.json");
        File.WriteAllText(manifestPath, manifest.ToJsonString());
        var start = new ProcessStartInfo(Path.Combine(rig, "boot.sh"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in (string[])["--kernel", machine.Kernel, "--iommu", machine.Iommu, "--devices", plan.DeviceSpec, "--run-dir", Path.Combine(dir, "run"), "--timeout", "1800"])
        {
            start.ArgumentList.Add(a);
        }
        foreach (string p in plan.Params)
        {
            start.ArgumentList.Add("--param");
            start.ArgumentList.Add(p);
        }
        if (plan.Append.Count > 0)
        {
            start.ArgumentList.Add("--append");
            start.ArgumentList.Add(string.Join(' ', plan.Append));
        }
        start.ArgumentList.Add("--");
        foreach (string a in GuestCommand())
        {
            start.ArgumentList.Add(a);
        }
        start.ArgumentList.Add("conform-guest");
        start.ArgumentList.Add(manifestPath);
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        File.WriteAllText(Path.Combine(dir, "stdout"), stdout);
        File.WriteAllText(Path.Combine(dir, "stderr"), stderr.Result);
        var byFile = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (string line in stdout.Split('\n'))
        {
            if (line.StartsWith('{') && JsonNode.Parse(line) is JsonObject o && o["file"]?.GetValue<string>() is { } f)
            {
                byFile[f] = o;
            }
        }
        foreach (Entry e in batch)
        {
            if (!byFile.TryGetValue(e.File, out JsonObject? o))
            {
                string tail = string.Join(" | ", stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(3));
                e.Error = $"no result from the guest (boot.sh exit {process.ExitCode}: {tail})";
            }
            else if (o["error"] is { } error)
            {
                e.Error = $"in the guest: {error.GetValue<string>()}";
            }
            else
            {
                e.Kernel = [.. o["steps"]!.AsArray().Select(s => StepRecord.FromJson(s!.AsObject()))];
            }
        }
    }

    private static void RunModel(Entry e, RigMachine machine)
    {
        try
        {
            ScenarioDocument doc = ScenarioConformance.ForMachine(e.Doc!, machine.Profile, machine.ApertureLast, machine.PageSizes);
            ScenarioOutcome outcome = ScenarioRunner.Run(doc, new RunOptions());
            e.Model = [.. outcome.Steps.Select(StepRecord.From)];
        }
        catch (ScenarioParseException x)
        {
            e.Error ??= $"the model cannot build the host: {x.Message}";
        }
    }

    private int Report(List<Entry> entries, RigMachine machine, bool json, int boots, TimeSpan elapsed)
    {
        int files = 0, agreeingFiles = 0, compared = 0, agreed = 0, modelOnly = 0, refused = 0, errors = 0;
        var scenarios = new JsonArray();
        foreach (Entry e in entries)
        {
            var s = new JsonObject { ["file"] = e.File };
            scenarios.Add((JsonNode)s);
            if (e.Refused is not null)
            {
                refused++;
                s["refused"] = e.Refused;
                if (!json)
                {
                    console.Out.WriteLine($"{e.File}: refused: {e.Refused}");
                }
                continue;
            }
            if (e.Error is not null || e.Kernel is null || e.Model is null)
            {
                errors++;
                s["error"] = e.Error ?? "no result";
                if (!json)
                {
                    console.Out.WriteLine($"{e.File}: error: {e.Error ?? "no result"}");
                }
                continue;
            }
            files++;
            var steps = new JsonArray();
            var lines = new List<string>();
            int fileCompared = 0, fileAgreed = 0, fileModelOnly = 0;
            foreach ((StepRecord k, StepRecord m) in e.Kernel.Zip(e.Model))
            {
                var step = new JsonObject { ["index"] = k.Index, ["kind"] = k.Kind, ["location"] = k.Location };
                if (k.ModelOnly is not null)
                {
                    fileModelOnly++;
                    step["status"] = "model-only";
                    step["reason"] = k.ModelOnly;
                    if (!m.Passed)
                    {
                        step["model_problems"] = new JsonArray([.. m.Problems.Select(p => (JsonNode?)JsonValue.Create(p))]);
                        lines.Add($"  {m.Location} {m.Kind}: model-only, and the model missed its expectation: {m.Problems[0]}");
                    }
                    steps.Add((JsonNode)step);
                    continue;
                }
                fileCompared++;
                List<string> differences = StepDiff.Compare(k, m);
                bool ok = differences.Count == 0 && k.Passed && m.Passed;
                if (differences.Count == 0 && !k.Passed)
                {
                    differences.Add($"both missed the expectation: {k.Problems[0]}");
                }
                step["status"] = ok ? "agree" : "differ";
                step["kernel"] = k.ToJson();
                step["model"] = m.ToJson();
                step["differences"] = new JsonArray([.. differences.Select(d => (JsonNode?)JsonValue.Create(d))]);
                steps.Add((JsonNode)step);
                if (ok)
                {
                    fileAgreed++;
                }
                else
                {
                    lines.AddRange(differences.Select(d => $"  {k.Location} {k.Kind}: {d}"));
                }
            }
            compared += fileCompared;
            agreed += fileAgreed;
            modelOnly += fileModelOnly;
            bool fileOk = fileAgreed == fileCompared && lines.Count == 0;
            agreeingFiles += fileOk ? 1 : 0;
            s["steps"] = steps;
            s["agree"] = fileOk;
            if (!json)
            {
                console.Out.WriteLine($"{e.File}: {(fileOk ? "agree" : "DIFFER")} ({fileAgreed}/{fileCompared} steps compared agree, {fileModelOnly} model-only)");
                foreach (string l in lines)
                {
                    console.Out.WriteLine(l);
                }
            }
        }
        bool full = refused == 0 && errors == 0 && agreeingFiles == files && agreed == compared;
        if (json)
        {
            var doc = new JsonObject
            {
                ["kernel"] = machine.Kernel,
                ["iommu"] = machine.Iommu,
                ["profile"] = machine.Profile,
                ["boots"] = boots,
                ["seconds"] = Math.Round(elapsed.TotalSeconds, 1),
                ["files"] = files,
                ["files_agreeing"] = agreeingFiles,
                ["steps_compared"] = compared,
                ["steps_agreeing"] = agreed,
                ["steps_model_only"] = modelOnly,
                ["refused"] = refused,
                ["errors"] = errors,
                ["agree"] = full,
                ["scenarios"] = scenarios,
            };
            console.Out.WriteLine(doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        else
        {
            console.Out.WriteLine($"linux {machine.Kernel} {machine.Iommu} vs model {machine.Profile}: {agreeingFiles}/{files} files, {agreed}/{compared} steps agree"
                + $" ({modelOnly} model-only, {refused} refused, {errors} errors; {boots} boot(s), {elapsed.TotalSeconds:F0} s)");
        }
        return full ? ExitCodes.Success : ExitCodes.ScenarioFailed;
    }

    /// <summary>How the guest runs this very vfiolab: the host's <c>/</c> is the guest's, so the same paths work.</summary>
    private static string[] GuestCommand()
    {
        string process = Environment.ProcessPath ?? "vfiolab";
        if (Path.GetFileNameWithoutExtension(process) == "dotnet")
        {
            // Run as `dotnet VfioLab.Cli.dll`: the entry assembly sits beside this program's other files.
            return [process, Path.Combine(AppContext.BaseDirectory, "VfioLab.Cli.dll")];
        }
        return [process];
    }

    /// <summary>conformance/ of the checkout the current directory or this program is in.</summary>
    private static string? FindRig()
    {
        foreach (string start in (string[])[Directory.GetCurrentDirectory(), AppContext.BaseDirectory])
        {
            for (DirectoryInfo? d = new(start); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "conformance");
                if (File.Exists(Path.Combine(candidate, "boot.sh")))
                {
                    return candidate;
                }
            }
        }
        return null;
    }
}
