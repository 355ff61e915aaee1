using VfioLab.Addressing;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Simulation;

/// <summary>
/// A device acting as bus master: a DMA read or write of some bytes at an IOVA, translated by the
/// device's IOMMU group (<see cref="IommuDma"/>) and then carried out piece by piece against host RAM
/// or, peer-to-peer, against another function's BAR. What happens on the wire, not a kernel function:
/// the kernel only sees the fault records and the memory the device changed.
/// </summary>
/// <remarks>
/// Stateless; each piece takes the lock of the memory or function it touches, so a concurrent unmap,
/// reset or decode change can stop a later piece, as on hardware. A transfer stops at its first
/// failing piece: the pieces before it have happened (split TLPs ahead of a faulting one complete),
/// nothing after it does, and exactly that one failure is recorded in
/// <see cref="SimulatedHost.DmaFaults"/>. A piece that translates but lands in a peer BAR that does
/// not decode memory (disabled or in reset), or in neither RAM nor a BAR, is an
/// <see cref="IommuFaultReason.UnsupportedRequest"/>. Not modelled: the issuing function's bus-master
/// enable (the scenario format has no step to set it) and dirty marking of device-written frames
/// (frames become dirty when type1 unpins them, as <c>unpin_user_pages_dirty_lock</c> does).
/// </remarks>
internal static class DeviceDma
{
    /// <summary>The device reads <paramref name="size"/> bytes at <paramref name="iova"/> (DMA from memory).
    /// <see cref="DeviceDmaResult.Data"/> holds the bytes that arrived before any fault.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> exceeds the largest array (a caller bug).</exception>
    public static DeviceDmaResult Read(SimulatedHost host, SimulatedDevice device, Iova iova, ulong size)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, (ulong)Array.MaxLength);
        byte[] buffer = new byte[size];
        (ulong bytes, IommuFault? fault) = Transfer(host, device, iova, buffer, write: false);
        byte[] data = bytes == size ? buffer : buffer.AsSpan(0, (int)bytes).ToArray();
        return new DeviceDmaResult(bytes, fault, data);
    }

    /// <summary>The device writes <paramref name="data"/> at <paramref name="iova"/> (DMA to memory).
    /// On a fault the bytes before the faulting piece have been written.</summary>
    public static DeviceDmaResult Write(SimulatedHost host, SimulatedDevice device, Iova iova, ReadOnlySpan<byte> data)
    {
        // The pieces are written from a copy so that one transfer routine serves both directions.
        byte[] copy = data.ToArray();
        (ulong bytes, IommuFault? fault) = Transfer(host, device, iova, copy, write: true);
        return new DeviceDmaResult(bytes, fault, []);
    }

    private static (ulong Bytes, IommuFault? Fault) Transfer(SimulatedHost host, SimulatedDevice device, Iova iova, Span<byte> buffer, bool write)
    {
        // No log passed: the translation's own fault is recorded below only if the transfer gets that
        // far (an earlier unsupported request stops it first).
        DmaAccessResult access = IommuDma.Access(device.Group, device.DeviceName, iova, (ulong)buffer.Length, write, host.Pci, null);
        IReadOnlyList<DmaSegment> segments = access.Segments;
        ulong done = 0;
        for (int i = 0; i < segments.Count; i++)
        {
            DmaSegment s = segments[i];
            Span<byte> piece = buffer.Slice((int)done, (int)s.Size);
            ulong moved = s.Kind == DmaTargetKind.Ram
                ? RamAccess(host.Machine.Memory, s.Phys, piece, write)
                : PeerAccess(s, piece, write);
            done += moved;
            if (moved < s.Size)
            {
                var ur = new IommuFault(device.DeviceName, s.Iova.Plus(moved), write, IommuFaultReason.UnsupportedRequest);
                host.DmaFaults.Record(ur);
                host.Trace.Emit(TraceKind.DmaUnsupportedRequest, 0, TraceLog.F("device", ur.Device), TraceLog.F("iova", ur.Iova.Value),
                    TraceLog.F("write", write), TraceLog.F("target", s.Kind == DmaTargetKind.Ram ? "none" : s.Peer!.Address.ToString()));
                return (done, ur);
            }
        }
        if (access.Fault is { } fault)
        {
            host.DmaFaults.Record(fault);
        }
        return (done, access.Fault);
    }

    /// <summary>The bytes of <paramref name="piece"/> that RAM backs, from the start; a piece running past
    /// the end of RAM stops there.</summary>
    private static ulong RamAccess(PhysicalMemory memory, PhysAddr phys, Span<byte> piece, bool write)
    {
        ulong ramEnd = memory.FrameCount << memory.PageShift;
        if (phys.Value >= ramEnd)
        {
            return 0;
        }
        int n = (int)Math.Min((ulong)piece.Length, ramEnd - phys.Value);
        bool ok = write ? memory.Write(phys, piece[..n]) : memory.Read(phys, piece[..n]);
        System.Diagnostics.Debug.Assert(ok, "RAM access inside RAM failed");
        return (ulong)n;
    }

    /// <summary>A peer-to-peer piece: all of it while the peer decodes memory, none otherwise.</summary>
    private static ulong PeerAccess(DmaSegment s, Span<byte> piece, bool write)
    {
        bool ok = write
            ? s.Peer!.TryWriteBar(s.BarIndex, s.BarOffset, piece)
            : s.Peer!.TryReadBar(s.BarIndex, s.BarOffset, piece);
        return ok ? s.Size : 0;
    }
}
