using VfioLab.Addressing;
using VfioLab.Collections;

namespace VfioLab.Pci;

/// <summary>Which functions a bus-level reset reaches: the slot (same bus and device number) or the whole bus
/// (<c>pci_reset_slot</c> versus <c>pci_reset_bus</c>; vfio-pci's hot-reset scope).</summary>
internal enum PciResetScope
{
    /// <summary>Functions sharing domain, bus and device number.</summary>
    Slot,

    /// <summary>Functions sharing domain and bus number.</summary>
    Bus,
}

/// <summary>
/// The host's PCI hierarchy as the model needs it: functions by address, their buses and slots, and
/// the MMIO window above RAM where BARs are placed, naturally aligned, by a bump allocator (what
/// firmware and <c>pci_assign_resource</c> do). Answers which BAR decodes a physical address, so DMA
/// that lands there is peer-to-peer, and which functions a slot or bus reset reaches.
/// </summary>
/// <remarks>
/// Lock: <c>_lock</c>, a leaf lock; it protects <c>_functions</c>, <c>_barMap</c>, <c>_bySerial</c>
/// and <c>_cursor</c>. Never change: <see cref="MmioWindow"/>. Removed functions' addresses are not reused.
/// </remarks>
internal sealed class PciTopology
{
    private readonly object _lock = new();
    private readonly SortedDictionary<PciAddress, PciFunction> _functions = [];
    private readonly Dictionary<int, PciFunction> _bySerial = [];
    private readonly Dictionary<PciAddress, int> _serialOf = [];
    private readonly RunMap<BarKey> _barMap = new();
    private readonly ulong _pageSize;
    private ulong _cursor;
    private int _nextSerial;

    /// <summary>Creates a topology whose BARs go in <paramref name="mmioWindow"/>, which the host
    /// places above the end of RAM so that no MMIO pfn is a RAM frame.</summary>
    /// <param name="mmioWindow">The physical range BARs are placed in.</param>
    /// <param name="pageSize">The host page: a smaller BAR is placed at the start of a page of its own, the rest of
    /// which vfio-pci reserves (a dummy resource) so that the page can be mmapped; 1: no rounding.</param>
    public PciTopology(ByteRange mmioWindow, ulong pageSize = 1)
    {
        MmioWindow = mmioWindow;
        _cursor = mmioWindow.Start;
        _pageSize = pageSize;
    }

    /// <summary>The physical range BARs are allocated from.</summary>
    public ByteRange MmioWindow { get; }

    /// <summary>A window starting at the first 1 GiB boundary at or above <paramref name="ramEnd"/>
    /// (exclusive end of RAM) and running to 2^51-1; the upper half of the 52-bit physical space the
    /// profiles use is other drivers' MMIO (<c>Host.Machine.OtherMmioBase</c>), so the two never overlap.</summary>
    public static PciTopology AboveRam(ulong ramEnd, ulong pageSize = 1)
    {
        const ulong align = 1UL << 30;
        const ulong last = (1UL << 51) - 1;
        // RAM reaching the window's top (refused by the host's validation) leaves an empty window rather than a
        // start that wraps to 0 and places BARs over RAM frames.
        ulong start = ramEnd > last ? last + 1 : (ramEnd + (align - 1)) & ~(align - 1);
        return new PciTopology(new ByteRange(start, last), pageSize);
    }

    /// <summary>Every function, in address order.</summary>
    public IReadOnlyList<PciFunction> Functions
    {
        get { lock (_lock) { return [.. _functions.Values]; } }
    }

    /// <summary>The distinct buses, as (domain, bus), in order.</summary>
    public IReadOnlyList<(int Domain, int Bus)> Buses
    {
        get { lock (_lock) { return [.. _functions.Keys.Select(a => a.BusKey).Distinct()]; } }
    }

    /// <summary>The distinct slots, as (domain, bus, device), in order.</summary>
    public IReadOnlyList<(int Domain, int Bus, int Device)> Slots
    {
        get { lock (_lock) { return [.. _functions.Keys.Select(a => a.Slot).Distinct()]; } }
    }

    /// <summary>
    /// Adds a function and places its BARs: largest first, each at the next multiple of its size in
    /// the MMIO window (natural alignment, as the PCI spec requires of BAR decoding).
    /// </summary>
    /// <exception cref="ArgumentException">Duplicate address, duplicate or invalid BAR index or size, or a BAR the
    /// MMIO window cannot place (a host description the model refuses, not a broken model).</exception>
    public PciFunction AddFunction(PciAddress address, ushort vendorId, ushort deviceId, IEnumerable<PciBarRequest> bars) =>
        AddFunction(address, PciDeviceDescription.Default with { VendorId = vendorId, DeviceId = deviceId }, bars);

    /// <summary>
    /// Adds a function described by <paramref name="description"/> and places its BARs as above, then its expansion
    /// ROM (if any) after them, naturally aligned; the ROM is not entered in the decode map (its decode is off: only
    /// the kernel reads it, through <c>pci_map_rom</c>).
    /// </summary>
    /// <exception cref="ArgumentException">Duplicate address, invalid BAR, a description
    /// <see cref="PciDeviceDescription.Validate"/> refuses, or a BAR or ROM the MMIO window cannot place.</exception>
    public PciFunction AddFunction(PciAddress address, PciDeviceDescription description, IEnumerable<PciBarRequest> bars) =>
        TryAdd(address, description, bars, out string? error) ?? throw new ArgumentException(error, nameof(bars));

    /// <summary>Adds a function as <see cref="AddFunction(PciAddress, PciDeviceDescription, IEnumerable{PciBarRequest})"/>
    /// does; false, with the reason, when it cannot (the topology is then unchanged).</summary>
    public bool TryAddFunction(PciAddress address, PciDeviceDescription description, IEnumerable<PciBarRequest> bars, out string? error) =>
        TryAdd(address, description, bars, out error) is not null;

    private PciFunction? TryAdd(PciAddress address, PciDeviceDescription description, IEnumerable<PciBarRequest> bars, out string? error)
    {
        List<PciBarRequest> requests = [.. bars];
        if (description.Validate(requests) is { } invalid)
        {
            error = $"{address}: {invalid}";
            return null;
        }
        lock (_lock)
        {
            error = null;
            if (_functions.ContainsKey(address))
            {
                error = $"PCI function {address} already exists";
                return null;
            }
            var seen = new HashSet<int>();
            foreach (PciBarRequest r in requests)
            {
                if (r.Index is < 0 or > 5 || !seen.Add(r.Index) || r.Size < 16 || !System.Numerics.BitOperations.IsPow2(r.Size) ||
                    (r.Is64Bit && r.Index == 5))
                {
                    error = $"{address}: bad BAR {r.Index} size 0x{r.Size:x}";
                    return null;
                }
            }
            foreach (PciBarRequest r in requests)
            {
                if (r.Is64Bit && seen.Contains(r.Index + 1))
                {
                    error = $"{address}: 64-bit BAR {r.Index} overlaps BAR {r.Index + 1}";
                    return null;
                }
            }
            requests.Sort((a, b) => b.Size != a.Size ? b.Size.CompareTo(a.Size) : a.Index.CompareTo(b.Index));
            ulong cursor = _cursor;
            List<PciBar> placed = [];
            foreach (PciBarRequest r in requests)
            {
                ulong footprint = Math.Max(r.Size, _pageSize);
                if (!TryPlace(ref cursor, footprint, out ByteRange range))
                {
                    error = Unplaceable($"BAR {r.Index}", r.Size, cursor);
                    return null;
                }
                placed.Add(new PciBar(r.Index, r.Size, r.Is64Bit, r.Prefetchable, new PhysAddr(range.Start)));
            }
            placed.Sort((a, b) => a.Index.CompareTo(b.Index));
            ulong romBase = 0;
            if (description.RomSize != 0)
            {
                if (!TryPlace(ref cursor, description.RomSize, out ByteRange romRange))
                {
                    error = Unplaceable("the ROM", description.RomSize, cursor);
                    return null;
                }
                romBase = romRange.Start;
            }
            var function = new PciFunction(address, description, placed, romBase);
            int serial = ++_nextSerial;
            _functions.Add(address, function);
            _bySerial.Add(serial, function);
            _serialOf.Add(address, serial);
            foreach (PciBar bar in placed)
            {
                _barMap.Set(bar.PhysRange.Start, bar.PhysRange.Last, new BarKey(serial, bar.Index));
            }
            _cursor = cursor;
            return function;
        }
    }

    // Places `footprint` bytes at the next multiple of their size at or after `cursor` inside the MMIO window and moves
    // the cursor past them (a sub-page BAR's footprint is its whole page: it keeps that page to itself).
    private bool TryPlace(ref ulong cursor, ulong footprint, out ByteRange range)
    {
        ulong start = (cursor + (footprint - 1)) & ~(footprint - 1);
        if (start < cursor || start < MmioWindow.Start || !ByteRange.TryFromStartSize(start, footprint, out range) ||
            !MmioWindow.Contains(range))
        {
            range = default;
            return false;
        }
        cursor = range.Last == ulong.MaxValue ? range.Last : range.Last + 1;
        return true;
    }

    private string Unplaceable(string what, ulong size, ulong cursor) => MmioWindow.Start > MmioWindow.Last
        ? $"{what} size 0x{size:x} cannot be placed: no MMIO window is left above RAM"
        : $"{what} size 0x{size:x} does not fit what is left of the MMIO window {MmioWindow} (from 0x{cursor:x})";

    /// <summary>Removes a function (hot unplug); its BAR range no longer decodes. False when absent.</summary>
    public bool RemoveFunction(PciAddress address)
    {
        lock (_lock)
        {
            if (!_functions.Remove(address, out PciFunction? f))
            {
                return false;
            }
            _serialOf.Remove(address, out int serial);
            _bySerial.Remove(serial);
            foreach (PciBar bar in f.Bars)
            {
                _barMap.Remove(bar.PhysRange.Start, bar.PhysRange.Last);
            }
            return true;
        }
    }

    /// <summary>The function at <paramref name="address"/>.</summary>
    public bool TryGetFunction(PciAddress address, out PciFunction? function)
    {
        lock (_lock)
        {
            return _functions.TryGetValue(address, out function);
        }
    }

    /// <summary>The BAR decoding <paramref name="phys"/>, if any (regardless of the command register).</summary>
    public bool TryFindBar(PhysAddr phys, out PciFunction? function, out PciBar? bar)
    {
        lock (_lock)
        {
            function = null;
            bar = null;
            if (!_barMap.TryGetValue(phys.Value, out BarKey key))
            {
                return false;
            }
            function = _bySerial[key.Serial];
            bar = function.Bar(key.BarIndex);
            return bar is not null;
        }
    }

    /// <summary>The first BAR byte at or after <paramref name="phys"/>, so callers can split a physical
    /// range into RAM and BAR pieces by runs; false when no BAR lies there.</summary>
    public bool TryFindNextBarStart(PhysAddr phys, out PhysAddr start)
    {
        lock (_lock)
        {
            bool found = _barMap.TryGetAtOrAfter(phys.Value, out Run<BarKey> run);
            start = found ? new PhysAddr(Math.Max(run.Start, phys.Value)) : default;
            return found;
        }
    }

    /// <summary>Functions on the same slot as <paramref name="address"/>, in address order.</summary>
    public IReadOnlyList<PciFunction> FunctionsOnSlot(PciAddress address) => InScope(address, PciResetScope.Slot);

    /// <summary>Functions on the same bus as <paramref name="address"/>, in address order.</summary>
    public IReadOnlyList<PciFunction> FunctionsOnBus(PciAddress address) => InScope(address, PciResetScope.Bus);

    /// <summary>The functions a hot reset of <paramref name="address"/> reaches (SCENARIOS.md: the slot
    /// by default; the bus when the slot cannot be reset on its own).</summary>
    public IReadOnlyList<PciFunction> HotResetScope(PciAddress address, PciResetScope scope = PciResetScope.Slot) =>
        InScope(address, scope);

    /// <summary>Resets every function in the hot-reset scope of <paramref name="address"/> together:
    /// all enter reset, then all leave it (<c>pci_reset_slot</c>/<c>pci_reset_bus</c>). Returns them.</summary>
    public IReadOnlyList<PciFunction> HotReset(PciAddress address, PciResetScope scope = PciResetScope.Slot)
    {
        IReadOnlyList<PciFunction> functions = InScope(address, scope);
        foreach (PciFunction f in functions)
        {
            f.BeginReset();
        }
        foreach (PciFunction f in functions)
        {
            f.EndReset();
        }
        return functions;
    }

    private List<PciFunction> InScope(PciAddress address, PciResetScope scope)
    {
        lock (_lock)
        {
            List<PciFunction> result = [];
            foreach (KeyValuePair<PciAddress, PciFunction> kv in _functions)
            {
                if (scope == PciResetScope.Slot ? kv.Key.SameSlot(address) : kv.Key.SameBus(address))
                {
                    result.Add(kv.Value);
                }
            }
            return result;
        }
    }

    /// <summary>Which BAR of which function a physical run belongs to; constant over the run.</summary>
    private readonly record struct BarKey(int Serial, int BarIndex) : IRunValue<BarKey>
    {
        public BarKey Advance(ulong offset) => this;
    }
}
