namespace VfioLab.Host;

/// <summary>What a fault over a range of private memory must leave behind (handle_mm_fault's FAULT_FLAG_WRITE and
/// FAULT_FLAG_UNSHARE, as GUP and the CPU ask for them).</summary>
internal enum FaultMode
{
    /// <summary>A CPU read (or a GUP read of shared memory): holes of private anonymous memory map the shared zero
    /// frame read-only; present pages stay as they are.</summary>
    Read,

    /// <summary>A CPU write or a write pin: every page present, writable and exclusive (COW broken, the zero frame
    /// copied away from).</summary>
    Write,

    /// <summary>A read-only long-term pin since v6.2 (84209e87c696): every page present and exclusive to this mm,
    /// never the zero frame (holes and zero-frame pages get fresh frames); a writable VMA's COW-shared pages are
    /// broken as for a write.</summary>
    Unshare,

    /// <summary>A read-only long-term pin under <c>linux-6.1</c>: as <see cref="Unshare"/>, except that the zero frame is
    /// an acceptable answer (holes are read-faulted to it and zero-frame pages stay).</summary>
    UnshareKeepZero,
}
