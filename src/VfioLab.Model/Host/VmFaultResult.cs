namespace VfioLab.Host;

/// <summary>The outcome of a page fault (vm_fault_t, reduced to what the model distinguishes).</summary>
internal enum VmFaultResult
{
    /// <summary>The page is now present (VM_FAULT_NOPAGE or a mapped page).</summary>
    Ok,
    /// <summary>VM_FAULT_SIGBUS: the handler refused (a BAR with memory decode disabled, a zapped device).</summary>
    SigBus,
    /// <summary>VM_FAULT_OOM: no frame could be allocated.</summary>
    Oom,
    /// <summary>The access violates the VMA's protection or hits no VMA (SIGSEGV; EFAULT for GUP).</summary>
    SegV,
}
