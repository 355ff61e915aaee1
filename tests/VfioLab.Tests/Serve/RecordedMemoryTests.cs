using VfioLab.Serve;

namespace VfioLab.Tests.Serve;

/// <summary><see cref="RecordedMemory"/>: the mirror's mappings, pending until a call names them, then written; the
/// parts removed from written ones are what the recording must unmap.</summary>
public sealed class RecordedMemoryTests
{
    private static RealMapping Anon => new(0, 0, true, true, false, false, 0, "", 4096);

    [Fact]
    public void Name_WritesEveryPendingPieceItMeetsWholeAndOnlyOnce()
    {
        var m = new RecordedMemory();
        m.Mapped(0x1000, 0x5000, Anon);
        m.Mapped(0x8000, 0x9000, Anon);
        m.Mapped(0x10000, 0x11000, Anon);
        List<RecordedMemory.Piece> named = m.Name(0x4000, 0x8800);
        Assert.Equal([(0x1000UL, 0x5000UL), (0x8000UL, 0x9000UL)], named.Select(p => (p.Start, p.End)));
        Assert.Empty(m.Name(0x1000, 0x9000));
        Assert.Single(m.Name(0, ulong.MaxValue));
    }

    [Fact]
    public void Remove_CutsPendingAndWrittenAndReturnsTheWrittenPartsGone()
    {
        var m = new RecordedMemory();
        m.Mapped(0x1000, 0x5000, Anon);
        m.Mapped(0x8000, 0x9000, Anon);
        m.Name(0x1000, 0x2000);
        List<RecordedMemory.Piece> gone = m.Remove(0x2000, 0x8800);
        Assert.Equal([(0x2000UL, 0x5000UL)], gone.Select(p => (p.Start, p.End)));
        // What is left: written [0x1000, 0x2000), pending [0x8800, 0x9000).
        Assert.Equal([(0x8800UL, 0x9000UL)], m.Name(0, ulong.MaxValue).Select(p => (p.Start, p.End)));
        Assert.Equal([(0x1000UL, 0x2000UL)], m.Remove(0, 0x3000).Select(p => (p.Start, p.End)));
    }

    [Fact]
    public void Fork_CopiesBothListsAndTheCopiesGoTheirOwnWay()
    {
        var parent = new RecordedMemory();
        parent.Mapped(0x1000, 0x2000, Anon);
        parent.Mapped(0x3000, 0x4000, Anon);
        parent.Name(0x1000, 0x1001);
        RecordedMemory child = parent.Fork();
        Assert.Single(parent.Name(0x3000, 0x3001));
        Assert.Single(child.Name(0x3000, 0x3001));
        Assert.Single(child.Remove(0x1000, 0x2000));
        Assert.Single(parent.Remove(0x1000, 0x2000));
    }
}
