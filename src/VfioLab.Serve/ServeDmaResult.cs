using VfioLab.Lab;

namespace VfioLab.Serve;

/// <summary>A device DMA served to real memory: what the model did, and where the bytes went in the client.</summary>
/// <param name="Model">The model's DMA (its faults are the result's: a DMA that faulted moved nothing).</param>
/// <param name="Data">A read's bytes: the client's memory where the client's page is the one the IOMMU entry pins, the
/// model's frame elsewhere; empty for a write.</param>
/// <param name="RealBytes">How many bytes were read from or written to a real client's memory.</param>
/// <param name="ModelOnly">The pages whose bytes stayed in the model, each with why (no client maps the IOVA's
/// vaddr; the client's page there is no longer the pinned frame; the real copy failed).</param>
public sealed record ServeDmaResult(LabDmaResult Model, byte[] Data, ulong RealBytes, IReadOnlyList<string> ModelOnly);
