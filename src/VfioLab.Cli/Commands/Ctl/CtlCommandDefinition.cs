using System.CommandLine;

namespace VfioLab.Cli.Commands.Ctl;

/// <summary>Arguments and options of <c>vfiolab ctl</c>.</summary>
internal static class CtlCommandDefinition
{
    public static Command Create(CliConsole console)
    {
        var socket = new Option<string>("--socket") { HelpName = "PATH", Required = true, Description = "The socket of a running vfiolab serve." };
        var words = new Argument<string[]>("request")
        {
            Arity = ArgumentArity.OneOrMore,
            HelpName = "status|check|sizing|record-save|dma DEVICE read IOVA SIZE|dma DEVICE write IOVA HEX|reset DEVICE|unplug DEVICE|release DEVICE",
            Description = "What to ask the server.",
        };
        var command = new Command("ctl", "Ask a running vfiolab serve for its state, the sizing report or an invariant check, "
            + "or act on the host while clients run: device DMA, reset, unplug, release; record-save writes a recording server's scenario now.\n"
            + "Exit 0 when the request succeeded (check: no violation); 1 when it failed or a violation was found; 2 on a malformed request.")
        {
            socket, words,
        };
        command.SetAction(parse => new CtlCommand(console).Execute(parse.GetValue(socket)!, parse.GetValue(words)!));
        return command;
    }
}
