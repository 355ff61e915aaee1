using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;

namespace VfioLab.Preload.Tests;

/// <summary>
/// Faults across the serve protocol with real processes (issue 14 item 6): the server gone under a client, garbage
/// on the socket, a client killed while it holds files. Nothing hangs, every call fails with an errno, and the
/// server carries on for the next client.
/// </summary>
public sealed class ServeFaultTests
{
    private static string Host => Path.Combine(RepoPaths.Clients, "edu-host.yaml");

    [Fact]
    public void ServerKilled_WhileAClientHoldsFiles_CallsFailWithEioAndOpenWithEnoent()
    {
        NativeBuild.Ensure();
        using var server = ServeProcess.Start(Host);
        using var client = StartWaitingClient(server.Socket);
        server.Kill();
        client.StandardInput.WriteLine("go");
        client.StandardInput.Flush();
        Assert.True(client.WaitForExit(TimeSpan.FromSeconds(30)), "the client hung after its server died");
        var output = client.StandardOutput.ReadToEnd();
        Assert.True(client.ExitCode == 0, $"exit {client.ExitCode}:\n{output}{client.StandardError.ReadToEnd()}");
        Assert.Contains("container ioctl: Input/output error", output, StringComparison.Ordinal);
        Assert.Contains("open: No such file or directory", output, StringComparison.Ordinal);
    }

    [Fact]
    public void GarbageOnTheSocket_IsAnsweredEprotoAndClosed_AndTheNextClientIsServed()
    {
        NativeBuild.Ensure();
        using var server = ServeProcess.Start(Host);
        using (var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            socket.Connect(new UnixDomainSocketEndPoint(server.Socket));
            socket.ReceiveTimeout = 30_000;
            var garbage = new byte[24];
            BinaryPrimitives.WriteUInt32LittleEndian(garbage, 0xdeadbeef);
            socket.Send(garbage);
            var reply = new byte[24];
            var got = ReceiveAll(socket, reply);
            Assert.Equal(24, got);
            Assert.Equal(0x524c4656u, BinaryPrimitives.ReadUInt32LittleEndian(reply)); // 'VFLR'
            Assert.Equal(-71L, BinaryPrimitives.ReadInt64LittleEndian(reply.AsSpan(16))); // -EPROTO
            Assert.Equal(0, socket.Receive(new byte[1])); // then the server closes that connection
        }

        AssertClientRunsAsOnLinux(server, "dpdk-style-v1");
        var (exit, report) = server.Stop();
        Assert.True(exit == 0, $"vfiolab serve exited {exit}:\n{report}");
    }

    [Fact]
    public void AClientKilledWhileHoldingFiles_TheServerCarriesOn()
    {
        NativeBuild.Ensure();
        using var server = ServeProcess.Start(Host);
        using (var client = StartWaitingClient(server.Socket))
        {
            client.Kill();
            client.WaitForExit();
        }

        AssertClientRunsAsOnLinux(server, "dirty-tracking");
        var (exit, report) = server.Stop();
        Assert.True(exit == 0, $"vfiolab serve exited {exit}:\n{report}");
    }

    private static void AssertClientRunsAsOnLinux(ServeProcess server, string client)
    {
        var run = ProcessRun.Start(Path.Combine(RepoPaths.Build, "clients", client), ["0000:00:10.0"], new Dictionary<string, string?>
        {
            ["LD_PRELOAD"] = RepoPaths.Preload,
            ["VFIOLAB_SOCKET"] = server.Socket,
        });
        var expected = File.ReadAllText(Path.Combine(RepoPaths.Clients, "expected", client + ".txt"));
        Assert.True(expected == run.Stdout + $"exit {run.ExitCode}\n", $"{client}:\n{run.Both}\n--- server ---\n{server.Output}");
    }

    /// <summary>server-gone-client with the container and group 2 open, past its "ready" line.</summary>
    private static Process StartWaitingClient(string socket)
    {
        var info = ProcessRun.Info(Path.Combine(RepoPaths.Build, "server-gone-client"), ["2"], new Dictionary<string, string?>
        {
            ["LD_PRELOAD"] = RepoPaths.Preload,
            ["VFIOLAB_SOCKET"] = socket,
            ["VFIOLAB_TIMEOUT_MS"] = "10000",
        }, null);
        info.RedirectStandardInput = true;
        var client = Process.Start(info)!;
        var ready = client.StandardOutput.ReadLineAsync();
        if (!ready.Wait(TimeSpan.FromSeconds(60)) || ready.Result != "ready")
        {
            client.Kill();
            throw new InvalidOperationException($"server-gone-client did not get ready: {client.StandardError.ReadToEnd()}");
        }

        return client;
    }

    private static int ReceiveAll(Socket socket, byte[] buffer)
    {
        var n = 0;
        while (n < buffer.Length)
        {
            var got = socket.Receive(buffer, n, buffer.Length - n, SocketFlags.None);
            if (got == 0)
            {
                break;
            }

            n += got;
        }

        return n;
    }
}
