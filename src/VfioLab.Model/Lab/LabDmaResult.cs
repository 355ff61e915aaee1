namespace VfioLab.Lab;

/// <summary>The outcome of one device DMA: how many bytes moved before it completed or faulted, the data read,
/// and where and why it faulted. A fault is not an errno: the device sees an error response, the host logs it.</summary>
/// <param name="Bytes">Bytes transferred (all of them when <see cref="Ok"/>).</param>
/// <param name="Data">For a read, the bytes read (as many as <see cref="Bytes"/>); empty for a write.</param>
/// <param name="FaultIova">The IOVA that faulted, when the DMA faulted.</param>
/// <param name="FaultReason">Why it faulted, when it did.</param>
public sealed record LabDmaResult(ulong Bytes, byte[] Data, ulong? FaultIova, DmaFaultReason? FaultReason)
{
    /// <summary>Whether the whole transfer completed.</summary>
    public bool Ok => FaultReason is null;
}
