using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Host;

namespace VfioLab.Tests.Host;

/// <summary>Builders shared by the Host tests.</summary>
internal static class HostFixture
{
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;

    /// <summary>The runs successive single allocations (<see cref="PhysicalMemory.TryAllocateRun"/>) take for
    /// <paramref name="want"/> frames, until they have them or one is refused (<paramref name="failed"/>): the
    /// reference the batched and bulk allocators are compared with.</summary>
    public static List<PfnRun> AllocateSingly(PhysicalMemory mem, ulong want, out bool failed)
    {
        var runs = new List<PfnRun>();
        failed = false;
        while (want > 0 && !failed)
        {
            if (mem.TryAllocateRun(want, out PfnRun r))
            {
                runs.Add(r);
                want -= r.Count;
            }
            else
            {
                failed = true;
            }
        }
        return runs;
    }

    public static Machine NewMachine(ulong ram = 64 * MiB, int pageShift = 12, FrameLayout? layout = null) =>
        new(ram, pageShift, layout);

    /// <summary>A 16-page MMIO device file registered at <c>/dev/bar</c> on <paramref name="m"/>: what the fd-table,
    /// dup, fork and process tests open.</summary>
    public static FakeBarFile RegisterBar(Machine m)
    {
        var bar = new FakeBarFile(m.AllocateMmioPfns(16), 16);
        m.Devices.Register("/dev/bar", _ => DeviceOpenResult.Ok(bar));
        return bar;
    }

    public static ulong MmapAnon(AddressSpace mm, ulong size, MemoryProtection prot = MemoryProtection.Read | MemoryProtection.Write,
        MmapFlags extra = MmapFlags.None)
    {
        MmapFlags flags = MmapFlags.Anonymous | extra;
        if ((extra & MmapFlags.Shared) == 0)
        {
            flags |= MmapFlags.Private;
        }
        long r = mm.Mmap(0, size, prot, flags);
        Assert.True(r > 0, $"mmap failed: {ErrnoExtensions.FromReturn(r)}");
        return (ulong)r;
    }

    public static long Pin(AddressSpace mm, ulong vaddr, ulong pages, bool write, out PfnRun[] runs)
    {
        var buffer = new PfnRun[64];
        long r = Gup.PinUserPages(mm, new HostVirtAddr(vaddr), pages, write, buffer, out int n);
        runs = buffer[..n];
        return r;
    }

    public static Pte Translate(AddressSpace mm, ulong vaddr)
    {
        mm.MmapReadLock();
        try
        {
            Assert.True(mm.TryTranslateLocked(new HostVirtAddr(vaddr), out Pte pte), $"0x{vaddr:x} not present");
            return pte;
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }
}

/// <summary>A fake device file: its mmap makes a PFNMAP VMA whose fault handler maps a BAR at
/// <see cref="BarPfn"/> while <see cref="Enabled"/>; counts releases. Real state, no magic values.</summary>
internal sealed class FakeBarFile(Pfn barPfn, ulong barPages) : IFileOperations, IVmaOperations
{
    public Pfn BarPfn { get; } = barPfn;
    public bool Enabled { get; set; } = true;
    public MappingSpace Mapping { get; } = new();
    public int Releases { get; private set; }
    public int Faults { get; private set; }

    /// <summary>When set, <see cref="Release"/> records whether it ran under this address space's mmap lock.</summary>
    public AddressSpace? Watched { get; set; }

    public int ReleasesUnderMmapLock { get; private set; }

    public long Ioctl(SyscallContext ctx, uint request, Span<byte> arg) => request == 1 ? arg.Length : Errno.ENOTTY.AsReturn();

    public long Ioctl(SyscallContext ctx, uint request, ulong value) => request == 2 ? (long)value : Errno.ENOTTY.AsReturn();

    public long Mmap(SyscallContext ctx, MmapRequest request)
    {
        if (request.Pgoff + request.PageCount > barPages)
        {
            return Errno.EINVAL.AsReturn();
        }
        request.CreateVma(VmFlags.Io | VmFlags.DontExpand | VmFlags.DontDump, this, Mapping, null, hugePfnMap: true);
        return 0;
    }

    public void Release()
    {
        Releases++;
        if (Watched is { IsMmapLockHeld: true })
        {
            ReleasesUnderMmapLock++;
        }
    }

    public VmFaultResult Fault(Vma vma, HostVirtAddr address, bool write)
    {
        Faults++;
        if (!Enabled)
        {
            return VmFaultResult.SigBus;
        }
        // Map the whole VMA at once, as vfio-pci's fault handler did (v5.8-v6.11).
        Errno e = vma.Mm.InsertPfnsLocked(vma, vma.Start, BarPfn.Plus(vma.VmPgoff), vma.PageCount, true);
        return e == Errno.None ? VmFaultResult.Ok : VmFaultResult.SigBus;
    }

    public void Open(Vma vma)
    {
    }

    public void Close(Vma vma)
    {
    }
}
