using VfioLab.Host;
using VfioLab.Vfio;
using VfioLab.Vfio.Pci;

namespace VfioLab.Simulation;

/// <summary>Host-side events that no single process causes: a device's release forced by the host
/// (every fd closed), and a surprise removal.</summary>
internal static class SimulatedHostActions
{
    /// <summary>Closes every fd of the device in every process, and every file its mappings still hold, so
    /// the driver's release runs; revokes its CPU mappings. Returns how many fds were closed.</summary>
    public static int ReleaseDevice(SimulatedHost host, SimulatedDevice device)
    {
        if (device.Vfio is not { } vfio)
        {
            return 0;
        }
        int closed = 0;
        foreach (Process p in host.Machine.Processes)
        {
            foreach (int fd in p.Fds.Snapshot())
            {
                if (p.Fds.TryGet(fd, out OpenFile file))
                {
                    bool ours = file.Operations is VfioDeviceFile df && ReferenceEquals(df.Device, vfio);
                    file.Put();
                    if (ours)
                    {
                        p.Fds.Close(fd);
                        closed++;
                    }
                }
            }
        }
        if (vfio.Hardware is VfioPciDevice pci)
        {
            // Mappings of the device hold its files (vm_file): those files are closed too, so the driver's
            // release (and the release notifier) runs now; the mappings stay, revoked.
            foreach (Vma vma in pci.Mapping.SnapshotVmas())
            {
                if (vma.File?.Operations is VfioDeviceFile df && ReferenceEquals(df.Device, vfio))
                {
                    df.Detach();
                }
            }
            pci.Revoke();
        }
        host.Trace.Emit(Diagnostics.TraceKind.VfioDeviceRelease, 0, Diagnostics.TraceLog.F("device", vfio.Name), Diagnostics.TraceLog.F("fds", closed));
        return closed;
    }

    /// <summary>Releases the device, then removes it from its groups and the PCI topology; a group
    /// left without VFIO devices disappears from <c>/dev/vfio</c>.</summary>
    public static int Unplug(SimulatedHost host, SimulatedDevice device)
    {
        int closed = ReleaseDevice(host, device);
        device.Group.RemoveMember(device.Member);
        if (device.Vfio is { } vfio)
        {
            vfio.Removed = true;
            vfio.Group.RemoveDevice(vfio);
            host.VfioPci.RemoveDevice(vfio);
            if (vfio.Group.DriverCount == 0)
            {
                host.Machine.Devices.Unregister($"/dev/vfio/{vfio.Group.Number}");
            }
        }
        if (device.Function is not null)
        {
            host.Pci.RemoveFunction(device.Function.Address);
        }
        host.Trace.Emit(Diagnostics.TraceKind.HostUnplug, 0, Diagnostics.TraceLog.F("device", device.Name));
        return closed;
    }
}
