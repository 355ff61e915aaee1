using VfioLab.Addressing;

namespace VfioLab.Host;

/// <summary>A driver's VMA callbacks (struct vm_operations_struct): called by the Host layer with the
/// mmap lock of <c>vma.Mm</c> held for read (fault) or write (open, close).</summary>
internal interface IVmaOperations
{
    /// <summary>The fault handler: make the page at <paramref name="address"/> present by calling
    /// <see cref="AddressSpace.InsertPfnsLocked"/>, or refuse with <see cref="VmFaultResult.SigBus"/>.</summary>
    VmFaultResult Fault(Vma vma, HostVirtAddr address, bool write);

    /// <summary>vm_ops->open: a copy of the VMA was made (fork, or a split by munmap).</summary>
    void Open(Vma vma);

    /// <summary>vm_ops->close: the VMA is going away (munmap, exit, or the old half of a split).</summary>
    void Close(Vma vma);
}
