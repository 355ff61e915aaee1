using System.Globalization;
using VfioLab.Lab;
using VfioLab.Linux;

namespace VfioLab.Serve;

public sealed partial class ServeServer
{
    /// <summary>Device <paramref name="device"/> reads <paramref name="size"/> bytes at <paramref name="iova"/>
    /// through its IOMMU. Where the IOVA is a client's mapping and the client's page at that vaddr is still the frame
    /// the IOMMU entry pins, the bytes come from the client's real memory.</summary>
    /// <exception cref="LabConfigurationException">No such device, it was unplugged, or the size is too large.</exception>
    public ServeDmaResult DeviceRead(string device, ulong iova, ulong size)
    {
        lock (_gate)
        {
            return DeviceReadLocked(device, iova, size);
        }
    }

    private ServeDmaResult DeviceReadLocked(string device, ulong iova, ulong size)
    {
        {
            LabDevice d = Host.Device(device);
            SyncBars();
            LabDmaResult model = d.DmaRead(iova, size);
            _recorder?.Dma(d, write: false, iova, [], size, model.Ok);
            byte[] data = model.Data;
            var notes = new List<string>();
            ulong real = model.Ok ? Reach(d, iova, data, write: false, notes) : 0;
            CheckInvariants($"DMA read by {device}");
            return new ServeDmaResult(model, data, real, notes);
        }
    }

    /// <summary>Device <paramref name="device"/> writes <paramref name="data"/> at <paramref name="iova"/> through
    /// its IOMMU: into the model, and into the client's real memory where the client's page is still the pinned
    /// frame (elsewhere the write stays in the model and <see cref="ServeDmaResult.ModelOnly"/> says so).</summary>
    /// <exception cref="LabConfigurationException">No such device, or it was unplugged.</exception>
    public ServeDmaResult DeviceWrite(string device, ulong iova, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            return DeviceWriteLocked(device, iova, data);
        }
    }

    private ServeDmaResult DeviceWriteLocked(string device, ulong iova, ReadOnlySpan<byte> data)
    {
        {
            LabDevice d = Host.Device(device);
            SyncBars();
            LabDmaResult model = d.DmaWrite(iova, data);
            _recorder?.Dma(d, write: true, iova, data, (ulong)data.Length, model.Ok);
            var notes = new List<string>();
            byte[] copy = data.ToArray();
            ulong real = model.Ok ? Reach(d, iova, copy, write: true, notes) : 0;
            SyncBars();
            CheckInvariants($"DMA write by {device}");
            return new ServeDmaResult(model, [], real, notes);
        }
    }

    // Page by page: the IOVA's mapping in the device's container names a vaddr of a client; when the client's page
    // there is the frame the IOMMU translates the IOVA to, the client's real memory is read or written.
    private ulong Reach(LabDevice device, ulong iova, byte[] data, bool write, List<string> notes)
    {
        ulong page = Host.PageSize;
        ulong shift = (ulong)System.Numerics.BitOperations.Log2(page);
        LabContainer? container = Host.Containers.FirstOrDefault(c => c.Groups.Contains(device.IommuGroup));
        IReadOnlyList<LabMapping> mappings = container?.Mappings ?? [];
        // The owners' maps are re-read first, so memory a client unmapped since is seen as gone.
        foreach (ClientProcess owner in _clients.Values.Where(c => !c.Exited && mappings.Any(m => m.OwnerPid == c.Lab.Pid)).ToArray())
        {
            owner.Refresh();
        }
        ulong done = 0;
        ulong real = 0;
        while (done < (ulong)data.Length)
        {
            ulong at = iova + done;
            int n = (int)Math.Min(page - (at & (page - 1)), (ulong)data.Length - done);
            Span<byte> piece = data.AsSpan((int)done, n);
            string? why = ReachPage(device, mappings, at, piece, write, shift);
            if (why is null)
            {
                real += (ulong)n;
            }
            else
            {
                notes.Add(string.Create(CultureInfo.InvariantCulture, $"iova 0x{at:x} (+{n}): {why}"));
            }
            done += (ulong)n;
        }
        return real;
    }

    private string? ReachPage(LabDevice device, IReadOnlyList<LabMapping> mappings, ulong iova, Span<byte> piece, bool write, ulong shift)
    {
        LabMapping? m = mappings.FirstOrDefault(x => iova >= x.Iova && iova - x.Iova < x.Size);
        if (m is null)
        {
            return "no DMA mapping of a client covers it (a peer-to-peer or model-only target)";
        }
        ClientProcess? owner = _clients.Values.FirstOrDefault(c => c.Lab.Pid == m.OwnerPid && !c.Exited);
        if (owner is null)
        {
            return $"the mapping's owner (simulated pid {m.OwnerPid}) is not a live client";
        }
        ulong vaddr = m.Vaddr + (iova - m.Iova);
        LabTranslation t = device.Translate(iova);
        ulong? frame = owner.Lab.FrameAt(vaddr);
        if (!t.Ok || frame is null || frame.Value != t.Physical >> (int)shift)
        {
            return $"{owner}'s page at vaddr 0x{vaddr:x} is no longer the frame the IOMMU entry pins";
        }
        long r = write ? RemoteProcess.Write(owner.Pid, vaddr, piece) : RemoteProcess.Read(owner.Pid, vaddr, piece);
        return r == piece.Length ? null : $"{owner}'s memory at vaddr 0x{vaddr:x} could not be {(write ? "written" : "read")} (it vanished)";
    }
}
