using VfioLab.Addressing;
using VfioLab.Host;
using VfioLab.Pci;

namespace VfioLab.Simulation;

/// <summary>
/// The PCI host bridge as the CPU sees it: a physical address outside RAM that falls in a BAR
/// reaches that function's memory, split at BAR boundaries, and only while the function decodes
/// memory (otherwise the access is dropped and reads return all-ones, as on real hardware).
/// </summary>
internal sealed class PciMmioBus(PciTopology topology) : IMmioBus
{
    /// <inheritdoc />
    public bool TryRead(PhysAddr address, Span<byte> destination) => Access(address, destination, null);

    /// <inheritdoc />
    public bool TryWrite(PhysAddr address, ReadOnlySpan<byte> source)
    {
        byte[] copy = source.ToArray();
        return Access(address, copy, copy);
    }

    private bool Access(PhysAddr address, Span<byte> buffer, byte[]? writeData)
    {
        ulong done = 0;
        bool all = true;
        while (done < (ulong)buffer.Length)
        {
            var at = new PhysAddr(address.Value + done);
            if (!topology.TryFindBar(at, out PciFunction? function, out PciBar? bar))
            {
                if (writeData is null)
                {
                    buffer[(int)done] = 0xff;
                }
                all = false;
                done++;
                continue;
            }
            ulong offset = at.Value - bar!.Base.Value;
            int chunk = (int)Math.Min((ulong)buffer.Length - done, bar.Size - offset);
            bool ok = writeData is null
                ? function!.TryReadBar(bar.Index, offset, buffer.Slice((int)done, chunk))
                : function!.TryWriteBar(bar.Index, offset, writeData.AsSpan((int)done, chunk));
            all &= ok;
            done += (ulong)chunk;
        }
        return all;
    }
}
