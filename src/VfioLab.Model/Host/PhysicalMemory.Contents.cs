using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Host;

// Sparse memory contents. Bytes are stored in 4 KiB chunks (ChunkShift) keyed by physical address,
// whatever the PAGE_SIZE: a chunk exists only once something wrote into it; reads of unwritten bytes
// return zeros. _written records which chunks exist so freeing or copying frames costs the number
// of written chunks, not the number of pages.
internal sealed partial class PhysicalMemory
{
    private const int ChunkShift = 12;
    private const int ChunkSize = 1 << ChunkShift;
    private readonly Dictionary<ulong, byte[]> _chunks = [];
    private readonly RunMap<Presence> _written = new();
    private readonly List<ulong> _chunkScratch = [];

    /// <summary>Bytes currently backed by written chunks (a footprint figure, not RAM in use).</summary>
    public ulong StoredContentBytes
    {
        get
        {
            using (_gate.EnterScope())
            {
                return (ulong)_chunks.Count * ChunkSize;
            }
        }
    }

    /// <summary>Reads RAM bytes, across frames; false when any byte lies outside RAM.</summary>
    public bool Read(PhysAddr address, Span<byte> destination)
    {
        if (!InRam(address, (ulong)destination.Length))
        {
            return false;
        }
        using (_gate.EnterScope())
        {
            ulong a = address.Value;
            int done = 0;
            while (done < destination.Length)
            {
                int offset = (int)(a & (ChunkSize - 1));
                int n = Math.Min(ChunkSize - offset, destination.Length - done);
                Span<byte> dst = destination.Slice(done, n);
                if (_chunks.TryGetValue(a >> ChunkShift, out byte[]? chunk))
                {
                    chunk.AsSpan(offset, n).CopyTo(dst);
                }
                else
                {
                    dst.Clear();
                }
                done += n;
                a += (ulong)n;
            }
            return true;
        }
    }

    /// <summary>Writes RAM bytes, across frames; false (and nothing written) when any byte lies outside RAM.</summary>
    public bool Write(PhysAddr address, ReadOnlySpan<byte> source)
    {
        if (!InRam(address, (ulong)source.Length))
        {
            return false;
        }
        using (_gate.EnterScope())
        {
            ulong a = address.Value;
            int done = 0;
            while (done < source.Length)
            {
                int offset = (int)(a & (ChunkSize - 1));
                int n = Math.Min(ChunkSize - offset, source.Length - done);
                ChunkForWriteLocked(a >> ChunkShift).AsSpan(offset, n).Clear();
                source.Slice(done, n).CopyTo(_chunks[a >> ChunkShift].AsSpan(offset, n));
                done += n;
                a += (ulong)n;
            }
            return true;
        }
    }

    /// <summary>Copies the contents of <paramref name="count"/> frames (the COW copy, copy_user_highpage),
    /// in cost proportional to the chunks the source actually holds.</summary>
    public void CopyFrames(Pfn source, Pfn destination, ulong count)
    {
        using (_gate.EnterScope())
        {
            int framesShift = PageShift - ChunkShift;
            ulong srcChunk = source.Value << framesShift;
            ulong dstChunk = destination.Value << framesShift;
            ulong chunks = count << framesShift;
            ClearContentsLocked(destination.Value, count);
            _chunkScratch.Clear();
            foreach (Run<Presence> r in _written.Overlapping(srcChunk, srcChunk + chunks - 1))
            {
                for (ulong c = r.Start; c <= r.Last; c++)
                {
                    _chunkScratch.Add(c);
                }
            }
            foreach (ulong c in _chunkScratch)
            {
                _chunks[c].CopyTo(ChunkForWriteLocked(dstChunk + (c - srcChunk)), 0);
            }
        }
    }

    private byte[] ChunkForWriteLocked(ulong chunk)
    {
        _gate.AssertHeld();
        if (!_chunks.TryGetValue(chunk, out byte[]? data))
        {
            data = new byte[ChunkSize];
            _chunks.Add(chunk, data);
            _written.Set(chunk, chunk, default);
        }
        return data;
    }

    private void ClearContentsLocked(ulong firstFrame, ulong count)
    {
        _gate.AssertHeld();
        int framesShift = PageShift - ChunkShift;
        ulong first = firstFrame << framesShift;
        ulong last = first + (count << framesShift) - 1;
        if (!_written.Overlaps(first, last))
        {
            return;
        }
        foreach (Run<Presence> r in _written.Overlapping(first, last))
        {
            for (ulong c = r.Start; c <= r.Last; c++)
            {
                _chunks.Remove(c);
            }
        }
        _written.Remove(first, last);
    }

    private bool InRam(PhysAddr address, ulong length)
    {
        ulong ramBytes = FrameCount << PageShift;
        return length == 0 ? address.Value <= ramBytes : address.Value < ramBytes && length <= ramBytes - address.Value;
    }
}
