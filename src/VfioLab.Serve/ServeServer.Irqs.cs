using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Lab;
using VfioLab.Linux;

namespace VfioLab.Serve;

public sealed partial class ServeServer
{
    private readonly List<EventFdBridge> _eventFds = [];

    // A client's eventfd given to SET_IRQS: the model gets an eventfd of its own in the simulated process, and the
    // server holds a duplicate of the client's (pidfd_getfd). A trigger's direction is model to client: what the
    // model signals is forwarded after every call. An INTx unmask eventfd's (ACTION_UNMASK) is client to model: a
    // watcher thread waits for the client's write, takes the count (as the kernel's virqfd does) and writes it to
    // the model's eventfd, which unmasks.
    private sealed record EventFdBridge(ClientProcess Client, int ModelFd, int ServerFd, bool Inbound)
    {
        public volatile bool Dropped;

        // An inbound bridge's fd belongs to its watcher once it runs: only the watcher reads it, and it closes it when
        // it ends, so a closed fd's number reused by another open is never read by mistake.
        public bool Watched;

        public void Release()
        {
            Dropped = true;
            if (!Watched)
            {
                RemoteProcess.Close(ServerFd);
            }
        }
    }

    // SET_IRQS with DATA_EVENTFD: struct vfio_irq_set { argsz, flags, index, start, count, s32 data[count] }.
    private Errno TranslateEventFds(ClientProcess client, ModelFile file, uint request, Span<byte> span, List<EventFdBridge> created)
    {
        if (file.Kind != FileKind.Device || request != VfioIoctl.DeviceSetIrqs || span.Length < VfioIrqSet.SizeOf)
        {
            return Errno.None;
        }
        uint argsz = BinaryPrimitives.ReadUInt32LittleEndian(span);
        var flags = (IrqSetFlags)BinaryPrimitives.ReadUInt32LittleEndian(span[VfioIrqSet.Offsets.Flags..]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(span[VfioIrqSet.Offsets.Count..]);
        if ((flags & IrqSetFlags.DataEventfd) == 0 || count > (uint)(span.Length - VfioIrqSet.SizeOf) / 4 ||
            argsz < VfioIrqSet.SizeOf + (ulong)count * 4)
        {
            // Not eventfds, or a header the model refuses before it looks at any fd.
            return Errno.None;
        }
        bool inbound = (flags & IrqSetFlags.ActionUnmask) != 0;
        for (int i = 0; i < count; i++)
        {
            Span<byte> slot = span.Slice(VfioIrqSet.SizeOf + (i * 4), 4);
            int realFd = BinaryPrimitives.ReadInt32LittleEndian(slot);
            if (realFd < 0)
            {
                continue;
            }
            string? target = ProcFiles.FdTarget(client.Pid, realFd);
            if (target is null)
            {
                return Errno.EBADF;
            }
            if (target != "anon_inode:[eventfd]")
            {
                return Errno.EINVAL;
            }
            int serverFd = client.Pidfd >= 0 ? RemoteProcess.PidfdGetfd(client.Pidfd, realFd) : (int)Errno.ESRCH.AsReturn();
            if (serverFd < 0)
            {
                Log($"{client}: pidfd_getfd of eventfd {realFd} failed ({ErrnoExtensions.FromReturn(serverFd)})");
                return Errno.EBADF;
            }
            int modelFd = client.Lab.CreateEventFd();
            if (modelFd < 0)
            {
                RemoteProcess.Close(serverFd);
                return ErrnoExtensions.FromReturn(modelFd);
            }
            created.Add(new EventFdBridge(client, modelFd, serverFd, inbound));
            BinaryPrimitives.WriteInt32LittleEndian(slot, modelFd);
        }
        return Errno.None;
    }

    private void KeepEventFds(List<EventFdBridge> created, bool callSucceeded)
    {
        foreach (EventFdBridge b in created)
        {
            if (callSucceeded)
            {
                _eventFds.Add(b);
                if (b.Inbound)
                {
                    b.Watched = true;
                    new Thread(() => WatchUnmask(b)) { IsBackground = true, Name = $"serve unmask eventfd {b.Client.Pid}:{b.ModelFd}" }.Start();
                }
            }
            else
            {
                Drop(b);
            }
        }
    }

    private static void Drop(EventFdBridge b)
    {
        if (b.Client.Lab.IsAlive)
        {
            b.Client.Lab.Syscalls.Close(b.ModelFd);
        }
        b.Release();
    }

    // Every model eventfd a client's eventfd stands behind: what the model signalled since the last look is written to
    // the client's eventfd (its counter adds up as the kernel's does).
    private void ForwardInterrupts()
    {
        for (int i = _eventFds.Count - 1; i >= 0; i--)
        {
            EventFdBridge b = _eventFds[i];
            if (!b.Client.Lab.IsAlive)
            {
                b.Release();
                _eventFds.RemoveAt(i);
                continue;
            }
            if (b.Inbound)
            {
                continue;
            }
            long n = b.Client.Lab.ReadEventFd(b.ModelFd);
            if (n > 0 && EventFd.Signal(b.ServerFd, (ulong)n) is int r && r < 0)
            {
                Log($"{b.Client}: signalling its eventfd failed ({ErrnoExtensions.FromReturn(r)})");
            }
        }
    }

    // One per unmask eventfd: poll the server's duplicate of the client's eventfd, read it (the count is taken, as the
    // kernel's virqfd_wakeup takes it) and write the count to the model's eventfd under the server's lock. The read is
    // made outside the lock: the client's eventfd may be blocking, and only this thread reads it. Dropping the bridge
    // ends the watcher within one poll interval, and the watcher closes the fd.
    private void WatchUnmask(EventFdBridge b)
    {
        try
        {
            WatchUnmaskUntilDropped(b);
        }
        finally
        {
            RemoteProcess.Close(b.ServerFd);
        }
    }

    private void WatchUnmaskUntilDropped(EventFdBridge b)
    {
        while (!b.Dropped && !_stopping)
        {
            if (!EventFd.WaitSignalled(b.ServerFd, TimeSpan.FromMilliseconds(100)) || b.Dropped)
            {
                continue;
            }
            long n = EventFd.Read(b.ServerFd);
            if (n <= 0)
            {
                return;
            }
            lock (_gate)
            {
                if (b.Dropped || !b.Client.Lab.IsAlive)
                {
                    return;
                }
                long r = b.Client.Lab.WriteEventFd(b.ModelFd, (ulong)n);
                _recorder?.EventFdWritten(b.Client, b.ModelFd, (ulong)n, r);
                ForwardInterrupts();
                CheckInvariants($"{b.Client} wrote its INTx unmask eventfd");
            }
        }
    }

    /// <summary>The device raises an interrupt (<see cref="LabDevice.RaiseInterrupt"/>); a client's eventfd behind
    /// the vector is signalled.</summary>
    /// <returns>Whether a trigger eventfd was signalled.</returns>
    /// <exception cref="LabConfigurationException">No such device, or it is not bound to vfio-pci.</exception>
    public bool RaiseInterrupt(string device, LabIrqIndex index, int vector = 0)
    {
        lock (_gate)
        {
            LabDevice d = Host.Device(device);
            bool signalled = d.RaiseInterrupt(index, vector);
            _recorder?.Interrupt(d, index, vector, signalled);
            ForwardInterrupts();
            CheckInvariants($"interrupt {index} {vector} of {device}");
            return signalled;
        }
    }
}
