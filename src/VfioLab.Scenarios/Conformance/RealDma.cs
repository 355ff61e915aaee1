namespace VfioLab.Scenarios.Conformance;

/// <summary>What a real device's DMA did: the bytes a read brought in, or why the device cannot do what the step asks
/// (then the step is model-only). A real device reports no IOMMU fault to its driver: a blocked write does not land
/// and a blocked read hands the device zeros, so <see cref="Data"/> is what arrived either way.</summary>
/// <param name="Data">For a read, the bytes that arrived; for a write, empty.</param>
/// <param name="CannotReason">Null when the DMA ran; otherwise why this device cannot issue it.</param>
public sealed record RealDma(byte[] Data, string? CannotReason)
{
    /// <summary>A DMA this device cannot issue.</summary>
    public static RealDma Cannot(string reason) => new([], reason);
}
