namespace VfioLab.Scenarios.Model;

/// <summary>Outcome words an <c>expect:</c> may use beyond <c>ok</c>, an errno and a field map.</summary>
[Flags]
internal enum StepOutcomes
{
    None = 0,

    /// <summary><c>fault</c>: a device DMA or a translation faults in the IOMMU.</summary>
    Fault = 1,

    /// <summary><c>SIGBUS</c>: a CPU access hits a zapped or disabled device mapping.</summary>
    Sigbus = 2,
}
