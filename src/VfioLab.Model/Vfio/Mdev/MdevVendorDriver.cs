using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Collections;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Vfio.Mdev;

/// <summary>
/// A mediated device's vendor driver (a vGPU, vfio-ccw, vfio-ap): no regions of its own in this model; it
/// pins guest pages through the VFIO core (<c>vfio_pin_pages</c>), reads and writes guest memory
/// (<c>vfio_dma_rw</c>), keeps its own count of what it pinned per IOVA page, and implements
/// <c>dma_unmap</c> by unpinning everything it pinned in the range. Closing the device releases every pin
/// it still holds, as drivers must. Before v6.0 it registers the unmap notifier itself when opened.
/// A <see cref="Misbehaving"/> driver ignores unmap notifications (it still unpins when closed), which drives
/// type1 into its retry limit.
/// </summary>
/// <remarks>Lock: <c>_lock</c> protects <c>_pins</c>; order: this lock, then the backend's. The backend calls
/// <see cref="DmaUnmap"/> with its own lock released, so the driver may unpin from it. One instance per device.</remarks>
internal sealed class MdevVendorDriver(bool misbehaving, int pageShift) : IVfioPinningDriver
{
    private readonly OrderedLock _lock = new(LockRank.MdevDriver);
    private readonly RunMap<MdevPinCount> _pins = new();

    /// <summary>Whether the driver ignores unmap notifications (to exercise the retry limit).</summary>
    public bool Misbehaving { get; } = misbehaving;

    /// <summary>Unmap notifications received.</summary>
    public int Notifications { get; private set; }

    /// <inheritdoc />
    public string Name => "mdev";

    /// <inheritdoc />
    public bool PinsPages => true;

    private ulong PageSize => 1UL << pageShift;

    /// <summary>Pins the driver holds, counted with multiplicity.</summary>
    public ulong PinsHeld
    {
        get
        {
            using (_lock.EnterScope())
            {
                ulong n = 0;
                foreach (Run<MdevPinCount> r in _pins.All())
                {
                    n += ((r.Last - r.Start + 1) >> pageShift) * r.Value.Count;
                }
                return n;
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>Before v6.0 the driver registers for unmap events itself; an error fails the open. Then the
    /// vendor's own per-open state is allocated (fault site <c>mdev_open_device</c>, ENOMEM, as vfio-ccw's
    /// async region); its failure unregisters the notifier again.</remarks>
    public Errno OpenDevice(VfioDevice device)
    {
        IVfioIommuPinning? chain = device.Group.Container?.Iommu is IVfioIommuPinning { UsesNotifierChain: true } b ? b : null;
        if (chain is not null)
        {
            Errno e = chain.RegisterNotifier(device, VfioIommuNotify.DmaUnmap);
            if (e != Errno.None)
            {
                return e;
            }
        }
        if (device.Faults.ShouldFail(FaultSite.MdevOpenDevice))
        {
            chain?.UnregisterNotifier(device);
            return Refusals.Refuse(Errno.ENOMEM, "mdev_open_device", "the vendor driver failed to open {4} (injected)", text: device.Name);
        }
        return Errno.None;
    }

    /// <inheritdoc />
    public void CloseDevice(VfioDevice device)
    {
        using (_lock.EnterScope())
        {
            UnpinRangeLocked(device, 0, ulong.MaxValue);
        }
        if (device.Group.Container?.Iommu is IVfioIommuPinning { UsesNotifierChain: true } backend)
        {
            backend.UnregisterNotifier(device);
        }
    }

    /// <summary>vfio_pin_pages on behalf of the device, recording the pins on success. Returns
    /// <paramref name="npage"/> or -errno; <paramref name="pfns"/> gets the pages' frames.</summary>
    public long PinPages(VfioDevice device, ulong iova, int npage, IommuProt prot, Pfn[] pfns)
    {
        using (_lock.EnterScope())
        {
            long ret = device.PinPages(iova, npage, prot, pfns, pageShift);
            if (ret > 0)
            {
                AdjustLocked(iova, iova + (((ulong)ret << pageShift) - 1), +1);
            }
            return ret;
        }
    }

    /// <summary>vfio_unpin_pages on behalf of the device; the driver's own count drops where it had pins, over
    /// exactly the pages type1 walked: none when the core refused the call (count out of range, a v1 container),
    /// only those before the gap where type1 stopped. False where the kernel would warn.</summary>
    public bool UnpinPages(VfioDevice device, ulong iova, int npage)
    {
        using (_lock.EnterScope())
        {
            bool ok = device.UnpinPages(iova, npage, pageShift, out int walked);
            if (walked > 0)
            {
                AdjustLocked(iova, iova + (((ulong)walked << pageShift) - 1), -1);
            }
            return ok;
        }
    }

    /// <summary>vfio_dma_rw on behalf of the device.</summary>
    public static Errno DmaRw(VfioDevice device, ulong iova, Span<byte> data, bool write, Process? current) =>
        device.DmaRw(iova, data, write, current);

    /// <inheritdoc />
    public void DmaUnmap(VfioDevice device, ulong iova, ulong size)
    {
        using (_lock.EnterScope())
        {
            Notifications++;
            if (Misbehaving || size == 0)
            {
                return;
            }
            UnpinRangeLocked(device, iova, iova + Math.Min(size - 1, ulong.MaxValue - iova));
        }
    }

    // Unpins every page the driver holds in [first, last], as often as it pinned it, in calls of at most
    // VFIO_PIN_PAGES_MAX_ENTRIES pages, and forgets them.
    private void UnpinRangeLocked(VfioDevice device, ulong first, ulong last)
    {
        _lock.AssertHeld();
        var held = new List<Run<MdevPinCount>>();
        foreach (Run<MdevPinCount> r in _pins.Overlapping(first, last))
        {
            held.Add(new Run<MdevPinCount>(Math.Max(r.Start, first), Math.Min(r.Last, last), r.Value));
        }
        ulong max = device.PinPagesMaxEntries(pageShift);
        foreach (Run<MdevPinCount> r in held)
        {
            for (uint k = 0; k < r.Value.Count; k++)
            {
                ulong pages = ((r.Last - r.Start) >> pageShift) + 1;
                for (ulong done = 0; done < pages; done += max)
                {
                    device.UnpinPages(r.Start + (done << pageShift), (int)Math.Min(max, pages - done), pageShift);
                }
            }
            _pins.Remove(r.Start, r.Last);
        }
    }

    // Adds delta to the driver's count of every page in [first, last]; counts never go below zero.
    private void AdjustLocked(ulong first, ulong last, int delta)
    {
        _lock.AssertHeld();
        var pieces = new List<Run<MdevPinCount>>();
        ulong cursor = first;
        bool done = false;
        foreach (Run<MdevPinCount> r in _pins.Overlapping(first, last))
        {
            ulong s = Math.Max(r.Start, first);
            if (s > cursor)
            {
                pieces.Add(new Run<MdevPinCount>(cursor, s - 1, default));
            }
            ulong e = Math.Min(r.Last, last);
            pieces.Add(new Run<MdevPinCount>(s, e, r.Value));
            done = e == last;
            cursor = done ? e : e + 1;
        }
        if (!done)
        {
            pieces.Add(new Run<MdevPinCount>(cursor, last, default));
        }
        foreach (Run<MdevPinCount> p in pieces)
        {
            long count = Math.Max(0, (long)p.Value.Count + delta);
            if (count == 0)
            {
                _pins.Remove(p.Start, p.Last);
            }
            else
            {
                _pins.Set(p.Start, p.Last, new MdevPinCount((uint)count));
            }
        }
    }

    /// <inheritdoc />
    public long Ioctl(VfioCallContext context, VfioDevice device, uint request, ref IoctlArgument argument)
    {
        if (request != VfioIoctl.DeviceGetInfo)
        {
            return Refusals.RefuseReturn(Errno.ENOTTY, "mdev_ioctl", "the vendor driver answers only VFIO_DEVICE_GET_INFO, not 0x{0:x}", request);
        }
        return DeviceInfoReply.Answer(ref argument, DeviceInfoFlags.None, 0, 0);
    }

    /// <inheritdoc />
    public long Mmap(VfioCallContext context, VfioDevice device, MmapRequest request) => Refusals.RefuseReturn(Errno.EINVAL, "mdev_mmap", "the vendor driver has no mmap-able region");

    /// <inheritdoc />
    public long Read(VfioDevice device, Span<byte> destination, ulong offset) => Refusals.RefuseReturn(Errno.EINVAL, "mdev_read", "the vendor driver has no readable region");

    /// <inheritdoc />
    public long Write(VfioDevice device, ReadOnlySpan<byte> source, ulong offset) => Refusals.RefuseReturn(Errno.EINVAL, "mdev_write", "the vendor driver has no writable region");
}
