using System.CommandLine;

namespace VfioLab.Cli.Commands.Serve;

/// <summary>Arguments and options of <c>vfiolab serve</c>.</summary>
internal static class ServeCommandDefinition
{
    public static Command Create(CliConsole console)
    {
        var host = new Argument<string>("host")
        {
            HelpName = "HOST.yaml|NAME",
            Description = "A scenario file (or built-in name) whose host, devices and processes sections define the simulated host; its steps, if any, run first.",
        };
        OptionLikeArguments.Refuse(host, pathsAllowed: true);
        var socket = new Option<string>("--socket")
        {
            HelpName = "PATH",
            Required = true,
            Description = "The Unix socket clients reach the server on (VFIOLAB_SOCKET for libvfiolab-preload.so); a stale socket file there is replaced.",
        };
        var trace = new Option<string>("--trace") { HelpName = "FILE", Description = "Write every call the clients make, one line each; - is standard output." };
        var record = new Option<string>("--record")
        {
            HelpName = "FILE",
            Description = "Record the clients' calls as a scenario (the host file, a process per client, a step per call expecting what the model answered), "
                + "written when the server stops or on vfiolab ctl record-save; vfiolab run FILE replays it with the same results.",
        };
        var command = new Command("serve", "Serve a simulated host to real VFIO clients (run them under libvfiolab-preload.so with VFIOLAB_SOCKET=PATH) "
            + "until interrupted (SIGINT/SIGTERM); then print the model's state and the invariant violations found.\n"
            + "Exit 0 when no invariant broke; 1 when one did or a step failed; 2 when the file is malformed or --record's file cannot be written; "
            + "74 when the recording could not be written at the end.")
        {
            host, socket, trace, record,
        };
        command.SetAction(parse => new ServeCommand(console).Execute(parse.GetValue(host)!, parse.GetValue(socket)!, parse.GetValue(trace), stop: null,
            parse.GetValue(record)));
        return command;
    }
}
