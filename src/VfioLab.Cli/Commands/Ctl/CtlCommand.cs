using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using VfioLab.Serve;

namespace VfioLab.Cli.Commands.Ctl;

/// <summary><c>vfiolab ctl</c>: one control request to a running server, its text printed.</summary>
internal sealed class CtlCommand(CliConsole console)
{
    public int Execute(string socket, string[] words)
    {
        if (!TryBuild(words, out ushort op, out byte[] payload, out string? problem))
        {
            console.Error.WriteLine($"vfiolab ctl: {problem}");
            return ExitCodes.UsageOrInputError;
        }
        KeyValuePair<long, byte[]> reply;
        try
        {
            reply = ServeControl.Call(socket, op, payload);
        }
        catch (SocketException e)
        {
            console.Error.WriteLine($"vfiolab ctl: no server answers on {Printable.Escape(socket)}: {e.Message}");
            return ExitCodes.ScenarioFailed;
        }
        catch (EndOfStreamException e)
        {
            console.Error.WriteLine($"vfiolab ctl: {e.Message}");
            return ExitCodes.ScenarioFailed;
        }
        byte[] body = reply.Value;
        if (op == ServeControl.Dma && body.Length >= 4)
        {
            int n = (int)BinaryPrimitives.ReadUInt32LittleEndian(body);
            if (n > 0)
            {
                console.Out.WriteLine(Convert.ToHexStringLower(body, 4, n));
            }
            body = body[(4 + n)..];
        }
        console.Out.Write(Printable.Escape(Encoding.UTF8.GetString(body)).Replace("\\n", "\n", StringComparison.Ordinal));
        return reply.Key == 0 ? ExitCodes.Success : reply.Key > 0 && op != ServeControl.Check ? ExitCodes.Success : ExitCodes.ScenarioFailed;
    }

    private static bool TryBuild(string[] w, out ushort op, out byte[] payload, out string? problem)
    {
        op = 0;
        payload = [];
        problem = null;
        switch (w[0])
        {
            case "status" or "check" or "sizing" or "record-save" when w.Length == 1:
                op = w[0] switch { "status" => ServeControl.Status, "check" => ServeControl.Check, "sizing" => ServeControl.Sizing, _ => ServeControl.RecordSave };
                return true;
            case "reset" or "unplug" or "release" when w.Length == 2:
                op = w[0] switch { "reset" => ServeControl.Reset, "unplug" => ServeControl.Unplug, _ => ServeControl.Release };
                payload = ServeControl.NamePayload(w[1]);
                return true;
            case "dma" when w.Length == 5 && w[2] is "read" or "write":
                if (!TryNumber(w[3], out ulong iova))
                {
                    problem = $"dma: IOVA '{Printable.Escape(w[3])}' is not a number";
                    return false;
                }
                op = ServeControl.Dma;
                if (w[2] == "read")
                {
                    if (!TryNumber(w[4], out ulong size) || size == 0 || size > 60000)
                    {
                        problem = $"dma read: SIZE '{Printable.Escape(w[4])}' is not a number from 1 to 60000";
                        return false;
                    }
                    payload = ServeControl.DmaPayload(w[1], write: false, iova, size, []);
                    return true;
                }
                byte[] data;
                try
                {
                    data = Convert.FromHexString(w[4]);
                }
                catch (FormatException)
                {
                    problem = $"dma write: data '{Printable.Escape(w[4])}' is not hex bytes";
                    return false;
                }
                payload = ServeControl.DmaPayload(w[1], write: true, iova, 0, data);
                return true;
            default:
                problem = $"unknown or incomplete request '{Printable.Escape(string.Join(' ', w))}' "
                    + "(status | check | sizing | record-save | dma DEVICE read IOVA SIZE | dma DEVICE write IOVA HEX | reset|unplug|release DEVICE)";
                return false;
        }
    }

    private static bool TryNumber(string text, out ulong value) =>
        text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out value)
            : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
