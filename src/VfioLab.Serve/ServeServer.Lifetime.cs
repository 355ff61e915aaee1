using System.Globalization;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Linux;

namespace VfioLab.Serve;

public sealed partial class ServeServer
{
    // A new process descended from a client: its simulated process is the ancestor's forked, so it holds the same
    // model files and the same mappings, as a forked child does.
    private ClientProcess? Adopt(int pid, ClientProcess ancestor)
    {
        Errno e = ancestor.Lab.TryFork(out LabProcess? child, UniqueName($"pid{pid}"));
        if (e != Errno.None || child is null)
        {
            Log($"pid {pid}: fork of {ancestor}'s simulated process failed ({e}); refused");
            return null;
        }
        var client = new ClientProcess(pid, child, ancestor) { Listener = _recorder };
        client.InheritMirror(ancestor);
        _recorder?.Forked(ancestor, client);
        foreach (Connection c in _connections)
        {
            if (c.File is { } f && f.Holders.Contains(ancestor))
            {
                f.Holders.Add(client);
            }
        }
        _clients[pid] = client;
        string? problem = client.Refresh();
        Log($"client {client}: adopted as a fork of {ancestor}{(problem is null ? "" : "; not mirrored: " + problem)}");
        WatchExit(client);
        return client;
    }

    // The real process's exit (its pidfd becomes readable) is the simulated process's exit.
    private void WatchExit(ClientProcess client)
    {
        int pidfd = RemoteProcess.PidfdOpen(client.Pid);
        if (pidfd < 0)
        {
            Log($"{client}: pidfd_open failed ({ErrnoExtensions.FromReturn(pidfd)}); its exit will be seen only as its connections' ends");
            return;
        }
        client.Pidfd = pidfd;
        var t = new Thread(() =>
        {
            try
            {
                while (!_stopping)
                {
                    int r = RemoteProcess.WaitReadable(pidfd, 200);
                    if (r != 0)
                    {
                        lock (_gate)
                        {
                            Exited(client);
                        }
                        return;
                    }
                }
            }
            finally
            {
                RemoteProcess.Close(pidfd);
            }
        })
        { IsBackground = true, Name = $"serve exit watch {client.Pid}" };
        _threads.Add(t);
        t.Start();
    }

    private void Exited(ClientProcess client)
    {
        if (client.Exited)
        {
            return;
        }
        client.Exited = true;
        if (client.Lab.IsAlive)
        {
            LogContainersAtExit(client);
            _recorder?.Exited(client);
            client.Lab.Exit();
        }
        foreach (Connection c in _connections)
        {
            c.File?.Holders.Remove(client);
        }
        if (_clients.TryGetValue(client.Pid, out ClientProcess? same) && same == client)
        {
            _clients.Remove(client.Pid);
        }
        Log($"client {client}: exited; locked_vm now {client.Lab.LockedVmBytes} bytes");
        CheckInvariants($"exit of {client}");
    }

    // What the client left in the model when it exited (a VMM keeps its guest RAM mapped until it quits), before the
    // exit releases it: each container it held, its groups and mappings, and the client's locked_vm.
    private void LogContainersAtExit(ClientProcess client)
    {
        foreach (Connection c in _connections)
        {
            if (c.File is not { Kind: FileKind.Container } f || !f.Holders.Contains(client) || client.Lab.ContainerOf(f.Fd) is not { } container)
            {
                continue;
            }
            IReadOnlyList<LabMapping> mappings = container.Mappings;
            Log(string.Create(CultureInfo.InvariantCulture,
                $"client {client}: at exit, container {f.Path} (model fd {f.Fd}), groups [{string.Join(", ", container.Groups)}], {mappings.Count} mapping(s), locked_vm {client.Lab.LockedVmBytes} bytes"));
            foreach (LabMapping m in mappings)
            {
                Log(string.Create(CultureInfo.InvariantCulture,
                    $"  iova 0x{m.Iova:x} size 0x{m.Size:x} vaddr 0x{m.Vaddr:x} {(m.Readable ? "r" : "-")}{(m.Writable ? "w" : "-")} locked {m.LockedPages} page(s)"));
            }
        }
    }
}
