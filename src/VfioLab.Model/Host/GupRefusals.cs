using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>Why GUP (<c>pin_user_pages_remote</c> with FOLL_LONGTERM) refuses a page, as <see cref="Refusals"/> records
/// it: kept beside <see cref="Gup"/> so each refusal there is one call.</summary>
internal static class GupRefusals
{
    private const string Check = "pin_user_pages_remote";

    /// <summary>EFAULT for the page at <paramref name="vaddr"/>: no VMA, a VM_PFNMAP/VM_IO VMA, or one without the access.</summary>
    public static Errno Unpinnable(Vma? vma, ulong vaddr, bool write) => vma switch
    {
        null => Refusals.Refuse(Errno.EFAULT, Check, "no VMA maps vaddr 0x{0:x}", vaddr),
        { IsPfnMapOrIo: true } => Refusals.Refuse(Errno.EFAULT, Check,
            "vaddr 0x{0:x} is in a VM_PFNMAP/VM_IO VMA [0x{1:x}, 0x{2:x}], which GUP cannot pin", vaddr, vma.Start.Value, vma.Last.Value),
        _ => Refusals.Refuse(Errno.EFAULT, Check, write
            ? "vaddr 0x{0:x} is in a VMA [0x{1:x}, 0x{2:x}] that is not writable, and the device may write"
            : "vaddr 0x{0:x} is in a VMA [0x{1:x}, 0x{2:x}] that is not readable", vaddr, vma.Start.Value, vma.Last.Value),
    };

    /// <summary>The fault that would bring the page at <paramref name="vaddr"/> in failed: ENOMEM (no frame) or EFAULT.</summary>
    public static Errno FaultFailed(bool oom, ulong vaddr) => oom
        ? Refusals.Refuse(Errno.ENOMEM, "handle_mm_fault", "no free frame to fault in vaddr 0x{0:x}", vaddr)
        : Refusals.Refuse(Errno.EFAULT, "handle_mm_fault", "the fault at vaddr 0x{0:x} failed (SIGBUS or SIGSEGV)", vaddr);

    /// <summary>The owner's mm has been torn down.</summary>
    public static long DeadMm(int pid) => Refusals.RefuseReturn(Errno.EFAULT, Check, "the mm of process {0} is gone", (ulong)pid);

    /// <summary>An injected failure at the <c>pin</c> fault site.</summary>
    public static long Injected(ulong vaddr) => Refusals.RefuseReturn(Errno.ENOMEM, Check, "pinning at vaddr 0x{0:x} failed (injected)", vaddr);
}
