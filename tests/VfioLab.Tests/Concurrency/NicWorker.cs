using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Type1;
using VfioLab.Vfio;
using VfioLab.Vfio.Pci;

namespace VfioLab.Tests.Concurrency;

/// <summary>
/// The NIC's group (7, behind <see cref="StressRig.SecondUnit"/>) churning in the shared container of "vmm":
/// GROUP_SET_CONTAINER (a new IOMMU domain, every mapping replayed while the map workers map and unmap),
/// GROUP_UNSET_CONTAINER, closing and reopening the group fd, and the NIC's device fd opened, its BAR mmapped,
/// read and written, DMA-mapped into the container for peer-to-peer, reset, unmapped and closed in either order
/// (a device fd opened again while the mapping still holds the closed one's file makes the device's second
/// open file); the seeds profile's release notifier removes the peer-to-peer mapping when the device goes,
/// linux-6.18 would keep it (so the worker unmaps it first there); deferred work runs from here too. Results are predicted from this worker's
/// own state, with one exception allowed with its reason: a forked child of the fork worker inherits the
/// group and device files, so a file this worker let go may live until that child exits (reopening the
/// group then answers EBUSY, and UNSET_CONTAINER EBUSY while the child holds the device). Both are allowed
/// only while a child forked before the release may still be alive (<see cref="ForkWorker"/>'s counters),
/// never otherwise; at a barrier every child is gone, so the group's and the device's state is exact.
/// </summary>
internal sealed class NicWorker(StressRig rig, ForkWorker fork) : StressWorker(rig, "nic")
{
    /// <summary>Where the NIC's BAR is DMA-mapped for peer-to-peer (outside every other worker's IOVAs).</summary>
    public const ulong P2pIova = 8 * StressRig.GiB;
    private int _groupFd = -1;
    private int _deviceFd = -1;
    private ulong _bar;
    private bool _attached;
    // Whether the BAR mapping holds the file of the current device fd (false once that fd closed: a later
    // GET_DEVICE_FD opens a second file of the device while the mapping keeps the first).
    private bool _barSharesFd;
    private bool _p2pMapped;
    private long _groupHeldBefore;
    private long _deviceHeldBefore;

    // The peer-to-peer mapping of the BAR pins and charges nothing (PFNMAP).
    public override int Mappings => _p2pMapped ? 1 : 0;

    public override ulong ChargedPages => 0;

    public override ulong PagePins => 0;

    /// <summary>Attaches that succeeded (each one a new domain and a replay).</summary>
    public int Attaches { get; private set; }

    /// <summary>Peer-to-peer mappings made, and those the device's release removed (seeds profile).</summary>
    public (int Made, int GoneWithDevice) P2p { get; private set; }

    /// <summary>Results a forked child's copy of a file explained (allowed two ways, counted).</summary>
    public int HeldByChild { get; private set; }

    private bool HoldsDevice => _deviceFd >= 0 || _bar != 0;

    // A device file holds its group file: the group lives while either is ours.
    private bool HoldsGroup => _groupFd >= 0 || HoldsDevice;

    private bool ChildMayHoldGroup => fork.Exited < _groupHeldBefore;

    private bool ChildMayHoldDevice => fork.Exited < _deviceHeldBefore;

    public override void Step(Random rng)
    {
        if (HoldsDevice && rng.Next(2) == 0)
        {
            DeviceStep(rng);
        }
        else if (_groupFd < 0)
        {
            Reopen();
        }
        else
        {
            GroupStep(rng);
        }
    }

    /// <summary>Checks the group, the device and the container's domains against this worker's state
    /// (every forked child is gone at a barrier).</summary>
    public override string? CheckQuiescent()
    {
        VfioGroup group = Rig.Host.Vfio.FindGroup(StressRig.NicGroup)!;
        VfioDevice device = Rig.Host.Devices["nic"].Vfio!;
        VfioIommuSnapshot s = Rig.Backend.Snapshot();
        ulong pgsizes = _attached ? StressRig.SecondUnit.PgsizeBitmap : IommuHardwareProfile.VtD.PgsizeBitmap;
        var problems = new List<string>();
        if ((group.OpenedFile is not null) != HoldsGroup || (group.Container is not null) != _attached)
        {
            problems.Add($"group {StressRig.NicGroup}: open {group.OpenedFile is not null}, in a container {group.Container is not null}; expected {HoldsGroup}, {_attached}");
        }
        int files = (_deviceFd >= 0 ? 1 : 0) + (_bar != 0 && !_barSharesFd ? 1 : 0);
        if (device.OpenCount != files)
        {
            problems.Add($"nic open count {device.OpenCount}, expected {files}");
        }
        if (s.Domains.Count != (_attached ? 2 : 1) || s.PgsizeBitmap != pgsizes)
        {
            problems.Add($"{s.Domains.Count} domain(s), pgsizes 0x{s.PgsizeBitmap:x}; expected {(_attached ? 2 : 1)}, 0x{pgsizes:x}");
        }
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }

    /// <summary>Lets go of everything (teardown, every child gone): nothing may stay open or attached.</summary>
    public void Close()
    {
        if (_p2pMapped)
        {
            UnmapP2p();
        }
        if (_bar != 0)
        {
            Expect(Sys.Munmap(_bar, StressRig.BarMapSize) == 0, "teardown munmap");
        }
        foreach (int fd in new[] { _deviceFd, _groupFd })
        {
            Expect(fd < 0 || Sys.Close(fd) == 0, $"teardown close {fd}");
        }
        (_bar, _deviceFd, _groupFd, _attached) = (0, -1, -1, false);
    }

    private void Reopen()
    {
        bool childMayHold = ChildMayHoldGroup;
        Position = "open group";
        int fd = Sys.Open($"/dev/vfio/{StressRig.NicGroup}");
        if (fd == Errno.EBUSY.AsReturn() && (HoldsDevice || childMayHold))
        {
            // Our device, or a child's copy of the old group file, keeps the one open file alive.
            HeldByChild += HoldsDevice ? 0 : 1;
            return;
        }
        Expect(fd >= 0 && !HoldsDevice, $"open group (device held {HoldsDevice}, child may hold {childMayHold}): {E(fd)}");
        _groupFd = fd;
        _attached = false;
    }

    private void GroupStep(Random rng)
    {
        switch (rng.Next(6))
        {
            case 0 or 1:
                Position = _attached ? "set container again" : "set container";
                long set = StressRig.SetContainer(Sys, _groupFd, Rig.Container);
                Expect(set == (_attached ? Errno.EINVAL.AsReturn() : 0), $"{Position}: {E(set)}");
                Attaches += _attached ? 0 : 1;
                _attached = true;
                break;
            case 2:
                bool childMayHold = ChildMayHoldDevice;
                Position = "unset container";
                long unset = Sys.Ioctl(_groupFd, VfioIoctl.GroupUnsetContainer, 0);
                if (unset == Errno.EBUSY.AsReturn() && _attached && !HoldsDevice && childMayHold)
                {
                    HeldByChild++;
                    break;
                }
                long expected = !_attached ? Errno.EINVAL.AsReturn() : HoldsDevice ? Errno.EBUSY.AsReturn() : 0;
                Expect(unset == expected, $"unset container (attached {_attached}, device held {HoldsDevice}): {E(unset)}");
                _attached &= unset != 0;
                break;
            case 3 or 4 when _deviceFd < 0:
                Position = "get device fd";
                long dev = StressRig.GetDeviceFd(Sys, _groupFd, StressRig.Nic);
                Expect(_attached ? dev >= 0 : dev == Errno.EINVAL.AsReturn(), $"get device fd (attached {_attached}): {E(dev)}");
                _deviceFd = dev >= 0 ? (int)dev : -1;
                break;
            default:
                Position = "close group";
                Expect(Sys.Close(_groupFd) == 0, Position);
                _groupFd = -1;
                ReleasedGroupIfLast();
                break;
        }
    }

    private void DeviceStep(Random rng)
    {
        switch (rng.Next(8))
        {
            case 0 when _bar == 0:
                Position = "mmap bar";
                long m = Sys.Mmap(0, StressRig.BarMapSize, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared, _deviceFd, VfioPci.IndexToOffset(0u));
                Expect(m > 0, $"mmap bar: {E(m)}");
                _bar = (ulong)m;
                _barSharesFd = true;
                break;
            case 0 or 1 when _bar != 0:
                ulong at = _bar + ((ulong)rng.Next((int)(StressRig.BarMapSize / 4)) * 4);
                byte[] b = BitConverter.GetBytes((uint)at);
                Position = $"bar write and read 0x{at:x}";
                long w = Sys.WriteMemory(at, b);
                long r = Sys.ReadMemory(at, b);
                Expect(w == 0 && r == 0, $"{Position}: {E(w)}/{E(r)}");
                break;
            case 2 when _deviceFd >= 0:
                Position = "device reset";
                long reset = Sys.Ioctl(_deviceFd, VfioIoctl.DeviceReset, 0);
                Expect(reset == 0, $"nic reset: {E(reset)}");
                break;
            case 3 when _bar != 0:
                LetGoOfDeviceIfLast(closingFd: false);
                Position = "munmap bar";
                Expect(Sys.Munmap(_bar, StressRig.BarMapSize) == 0, Position);
                _bar = 0;
                ReleasedDeviceIfLast();
                break;
            case 4 when _deviceFd >= 0:
                LetGoOfDeviceIfLast(closingFd: true);
                Position = "close device";
                Expect(Sys.Close(_deviceFd) == 0, Position);
                _deviceFd = -1;
                _barSharesFd = false;
                ReleasedDeviceIfLast();
                break;
            case 5 when _bar != 0 && !_p2pMapped:
                // Peer-to-peer: the BAR's mmap DMA-mapped into the shared container (the seeds profile holds the
                // device and registers for its release; linux-6.18 walks the page table).
                Position = "map bar for p2p";
                long map = UserIoctls.Map(Sys, Rig.Container, P2pIova, _bar, StressRig.BarMapSize);
                Expect(map == 0, $"{Position}: {E(map)}");
                _p2pMapped = true;
                P2p = (P2p.Made + 1, P2p.GoneWithDevice);
                break;
            case 6 when _p2pMapped:
                UnmapP2p();
                break;
            case 7:
                // A kworker: deferred notifier unregistrations (seeds profile) run while the others work.
                Position = "run deferred work";
                Rig.Host.Machine.Work.RunAll();
                break;
            default:
                return;
        }
    }

    private void UnmapP2p()
    {
        Position = "unmap p2p";
        (long ret, ulong size) = UserIoctls.Unmap(Sys, Rig.Container, P2pIova, StressRig.BarMapSize);
        Expect(ret == 0 && size == StressRig.BarMapSize, $"{Position}: {E(ret)}, size 0x{size:x}");
        _p2pMapped = false;
    }

    // Before the last of our device references goes: linux-6.18 keeps a DMA mapping of a released device's BAR
    // (the upstream limitation the checker reports), so, as QEMU does, the mapping goes first there. The seeds
    // profile's release notifier removes it (ReleasedDeviceIfLast checks that).
    private void LetGoOfDeviceIfLast(bool closingFd)
    {
        bool last = closingFd ? _bar == 0 : _deviceFd < 0;
        if (last && _p2pMapped && !Rig.Backend.Behavior.DeviceMemoryNotifier)
        {
            UnmapP2p();
        }
    }

    // Our last reference to the device went: a child forked before now may still hold it (the counter is
    // read after the release, so every such child is counted).
    private void ReleasedDeviceIfLast()
    {
        if (HoldsDevice)
        {
            return;
        }
        _deviceHeldBefore = fork.Started;
        if (_p2pMapped)
        {
            // Seeds: the device's release (here, or at the exit of the last child holding a copy of its file)
            // removes the mapping. Children exit within their step, so the wait ends.
            Position = "wait for children holding the device";
            while (ChildMayHoldDevice)
            {
                Thread.Yield();
            }
            Position = "p2p mapping gone with the device";
            (long ret, ulong size) = UserIoctls.Unmap(Sys, Rig.Container, P2pIova, StressRig.BarMapSize);
            Expect(ret == 0 && size == 0, $"{Position}: unmap {E(ret)}, 0x{size:x} still mapped");
            _p2pMapped = false;
            P2p = (P2p.Made, P2p.GoneWithDevice + 1);
        }
        ReleasedGroupIfLast();
    }

    private void ReleasedGroupIfLast()
    {
        if (!HoldsGroup)
        {
            _groupHeldBefore = fork.Started;
            // The group file goes (now or when the last child holding a copy exits): detached from the container.
            _attached = false;
        }
    }
}
