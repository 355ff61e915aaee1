using System.Globalization;
using System.Runtime.InteropServices;
using VfioLab.Cli.Commands.Run;
using VfioLab.Lab;
using VfioLab.Scenarios;
using VfioLab.Serve;

namespace VfioLab.Cli.Commands.Serve;

/// <summary><c>vfiolab serve</c>: builds the host of a scenario file, runs its steps, then serves it on a socket until
/// SIGINT or SIGTERM (or <c>stop</c>, for tests), and prints what the clients left behind; with <c>--record FILE</c>,
/// writes the clients' calls there as a scenario when it stops.</summary>
internal sealed class ServeCommand(CliConsole console)
{
    public int Execute(string hostFile, string socketPath, string? tracePath, CancellationToken? stop, string? recordPath = null)
    {
        if (recordPath is not null && ScenarioFile.CheckWritable(recordPath) is { } unwritable)
        {
            console.Error.WriteLine($"vfiolab serve: --record {Printable.Escape(recordPath)}: {Printable.Escape(unwritable)}; nothing was served");
            return ExitCodes.UsageOrInputError;
        }
        ScenarioDocument doc;
        try
        {
            doc = ScenarioInput.LoadOne(hostFile);
        }
        catch (ScenarioParseException e)
        {
            console.Error.WriteLine(e.Message);
            return ExitCodes.UsageOrInputError;
        }
        PreparedScenario prepared;
        try
        {
            prepared = ScenarioRunner.Prepare(doc);
        }
        catch (LabConfigurationException e)
        {
            console.Error.WriteLine($"{doc.File}: {e.Message}");
            return ExitCodes.UsageOrInputError;
        }
        bool stepsFailed = false;
        if (doc.StepCount > 0)
        {
            ScenarioOutcome outcome = prepared.Execute();
            stepsFailed = !outcome.Passed;
            console.Out.WriteLine($"{doc.Name}: {doc.StepCount} step(s) ran first{(stepsFailed ? ", and one did not meet its expectation" : "")}");
        }
        TextWriter? trace = tracePath is null ? null : tracePath == "-" ? console.Out : new StreamWriter(tracePath);
        using var stopped = new ManualResetEventSlim();
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stopped.Set(); });
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stopped.Set(); });
        using CancellationTokenRegistration? onStop = stop?.Register(stopped.Set);
        try
        {
            using ServeServer server = ServeServer.Start(prepared.Host, socketPath, new ServeOptions
            {
                Log = console.Out,
                Trace = trace,
                RecordPath = recordPath,
                RecordHostText = recordPath is null ? null : HostText(hostFile),
                RecordHostFile = doc.File,
            });
            console.Out.WriteLine($"serving {doc.Name} on {server.SocketPath} (paths under {server.RootPath}); "
                + "stop with Ctrl-C");
            console.Out.Flush();
            stopped.Wait();
            server.Dispose();
            Summary(server);
            if (server.IsRecording && !SaveRecording(server, recordPath!))
            {
                return ExitCodes.OutputError;
            }
            return stepsFailed || server.Violations.Count > 0 ? ExitCodes.ScenarioFailed : ExitCodes.Success;
        }
        finally
        {
            if (trace is not null && trace != console.Out)
            {
                trace.Dispose();
            }
        }
    }

    // The text the host was read from: the file, or the built-in scenario of that name (as ScenarioInput chose).
    private static string HostText(string hostFile) =>
        File.Exists(hostFile) || !BuiltInScenarios.Exists(hostFile) ? File.ReadAllText(hostFile) : BuiltInScenarios.GetText(hostFile);

    // After the last connection closed (their closes are recorded too), the whole recording, written atomically.
    private bool SaveRecording(ServeServer server, string path)
    {
        try
        {
            int steps = server.SaveRecording();
            console.Out.WriteLine($"recorded {steps} step(s) to {Printable.Escape(path)}; replay with: vfiolab run {Printable.Escape(path)}");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            console.Error.WriteLine($"vfiolab serve: the recording could not be written to {Printable.Escape(path)}: {e.Message}");
            return false;
        }
    }

    private void Summary(ServeServer server)
    {
        LabHost host = server.Host;
        TextWriter o = console.Out;
        o.WriteLine("state at stop:");
        foreach (LabProcess p in host.Processes)
        {
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  process {p.Name}: {(p.IsAlive ? "alive" : "exited")}, locked_vm {p.LockedVmBytes} bytes"));
        }
        foreach (LabContainer c in host.Containers)
        {
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  container: {c.Mappings.Count} mapping(s), groups [{string.Join(", ", c.Groups)}]"));
            foreach (LabMapping m in c.Mappings)
            {
                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    iova 0x{m.Iova:x} size 0x{m.Size:x} vaddr 0x{m.Vaddr:x}"));
            }
        }
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  pinned pages {host.PinnedPages}"));
        o.WriteLine(server.Violations.Count == 0 ? "invariants: no violation" : $"invariants: {server.Violations.Count} violation(s)");
        foreach (string v in server.Violations)
        {
            o.WriteLine("  " + v);
        }
    }
}
