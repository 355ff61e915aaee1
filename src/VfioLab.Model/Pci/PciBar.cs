using System.Numerics;
using VfioLab.Addressing;

namespace VfioLab.Pci;

/// <summary>
/// One memory Base Address Register of a PCI function and the device memory behind it: index,
/// size (a power of two), 64-bit and prefetchable attributes, and the physical base the topology
/// assigned, naturally aligned in the MMIO window above RAM. Its pfns are device memory, never RAM
/// frames (<c>struct resource</c> of <c>pci_dev-&gt;resource[i]</c> on the kernel side).
/// </summary>
/// <remarks>Contents are sparse 4 KiB chunks allocated on first write; unwritten bytes read 0.
/// Not synchronised itself: the owning <see cref="PciFunction"/>'s lock protects the contents.</remarks>
internal sealed class PciBar
{
    private const int ChunkShift = 12;
    private const ulong ChunkSize = 1UL << ChunkShift;
    private readonly Dictionary<ulong, byte[]> _chunks = [];

    /// <summary>Creates a BAR; <paramref name="size"/> must be a power of two of at least 16 bytes
    /// and <paramref name="basePhys"/> a multiple of it.</summary>
    public PciBar(int index, ulong size, bool is64Bit, bool prefetchable, PhysAddr basePhys)
    {
        if (index is < 0 or > 5 || size < 16 || !BitOperations.IsPow2(size) || !basePhys.IsAligned(size))
        {
            throw new ArgumentException($"bad BAR {index}: size 0x{size:x} base {basePhys}");
        }
        Index = index;
        Size = size;
        Is64Bit = is64Bit;
        Prefetchable = prefetchable;
        Base = basePhys;
    }

    /// <summary>BAR number, 0 to 5 (a 64-bit BAR also uses the next register).</summary>
    public int Index { get; }

    /// <summary>Size in bytes, a power of two.</summary>
    public ulong Size { get; }

    /// <summary>Whether the BAR is 64-bit (PCI_BASE_ADDRESS_MEM_TYPE_64).</summary>
    public bool Is64Bit { get; }

    /// <summary>Whether the BAR is prefetchable (PCI_BASE_ADDRESS_MEM_PREFETCH).</summary>
    public bool Prefetchable { get; }

    /// <summary>Assigned physical base, naturally aligned.</summary>
    public PhysAddr Base { get; }

    /// <summary>The physical range the BAR decodes.</summary>
    public ByteRange PhysRange => new(Base.Value, Base.Value + (Size - 1));

    /// <summary>Number of 4 KiB chunks holding written bytes (a cost measure for tests).</summary>
    public int MaterialisedChunks => _chunks.Count;

    internal void ReadRaw(ulong offset, Span<byte> destination)
    {
        System.Diagnostics.Debug.Assert(offset <= Size && (ulong)destination.Length <= Size - offset);
        int done = 0;
        while (done < destination.Length)
        {
            ulong at = offset + (ulong)done;
            ulong chunk = at >> ChunkShift;
            int within = (int)(at & (ChunkSize - 1));
            int n = Math.Min(destination.Length - done, (int)ChunkSize - within);
            Span<byte> dst = destination.Slice(done, n);
            if (_chunks.TryGetValue(chunk, out byte[]? data))
            {
                data.AsSpan(within, n).CopyTo(dst);
            }
            else
            {
                dst.Clear();
            }
            done += n;
        }
    }

    internal void WriteRaw(ulong offset, ReadOnlySpan<byte> source)
    {
        System.Diagnostics.Debug.Assert(offset <= Size && (ulong)source.Length <= Size - offset);
        int done = 0;
        while (done < source.Length)
        {
            ulong at = offset + (ulong)done;
            ulong chunk = at >> ChunkShift;
            int within = (int)(at & (ChunkSize - 1));
            int n = Math.Min(source.Length - done, (int)ChunkSize - within);
            if (!_chunks.TryGetValue(chunk, out byte[]? data))
            {
                data = new byte[ChunkSize];
                _chunks.Add(chunk, data);
            }
            source.Slice(done, n).CopyTo(data.AsSpan(within, n));
            done += n;
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"BAR{Index} {PhysRange} {(Is64Bit ? "64-bit" : "32-bit")}{(Prefetchable ? " pref" : "")}";
}
