using VfioLab.Iommu;

namespace VfioLab.Lab;

/// <summary>
/// A snapshot of one sPAPR DMA window: a TCE table programmed into a POWER PE (<c>struct iommu_table</c>), the
/// default 32-bit window or a dynamic one (VFIO_IOMMU_SPAPR_TCE_CREATE). What a VMM author on POWER sizes: how many
/// TCEs a guest keeps valid, and the table memory the kernel charged to the process's <c>locked_vm</c> for it.
/// </summary>
/// <param name="Id">Identifies the window in its host: windows are numbered from 1 in the order the lab first lists
/// them; a window removed and created again is a new window with a new number. A window two PEs share (the tables of
/// one container) is one window.</param>
/// <param name="Slot">The PE's window slot (0: the default 32-bit window, 1: the 64-bit dynamic window).</param>
/// <param name="Start">The first bus address (IOVA) the window translates.</param>
/// <param name="Last">The last bus address it translates (inclusive).</param>
/// <param name="PageSize">The TCE page size in bytes.</param>
/// <param name="Entries">TCEs in the window (<c>it_size</c>).</param>
/// <param name="Levels">Table levels.</param>
/// <param name="ValidEntries">TCEs that translate now.</param>
/// <param name="ChargedBytes">Table memory (the hardware table and its userspace view) charged to <c>locked_vm</c>.</param>
public sealed record LabTceWindow(int Id, int Slot, ulong Start, ulong Last, ulong PageSize, ulong Entries, int Levels, ulong ValidEntries,
    ulong ChargedBytes)
{
    internal static LabTceWindow Of(TceTable table, int id, int hostPageShift)
    {
        Addressing.ByteRange window = table.Window;
        return new LabTceWindow(id, table.Number, window.Start, window.Last, table.PageSize, table.Size, table.Levels, table.ValidEntries,
            table.ChargedPages << hostPageShift);
    }
}
