namespace VfioLab.Abi;

/// <summary>mmap protection bits (PROT_*), with Linux's values.</summary>
[Flags]
public enum MemoryProtection
{
    /// <summary>PROT_NONE.</summary>
    None = 0,
    /// <summary>PROT_READ.</summary>
    Read = 0x1,
    /// <summary>PROT_WRITE.</summary>
    Write = 0x2,
    /// <summary>PROT_EXEC.</summary>
    Exec = 0x4,
}
