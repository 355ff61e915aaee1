namespace VfioLab.Abi;

/// <summary>
/// The reply of <c>VFIO_DEVICE_GET_PCI_HOT_RESET_INFO</c>, decoded: the fixed struct and its flexible array of the
/// devices a slot or bus reset would also reset. The protocol every user follows: a first call with the bare struct
/// learns <c>count</c> (ENOSPC), <see cref="TryGetReplySize"/> sizes the second call's buffer.
/// </summary>
/// <param name="Info">The fixed struct: argsz, flags, count.</param>
/// <param name="Devices">The dependent devices, as many of <c>count</c> as fit the reply.</param>
/// <param name="Error">Why fewer than <c>count</c> devices were read; null when all were.</param>
public sealed record VfioPciHotResetInfoReply(VfioPciHotResetInfo Info, IReadOnlyList<VfioPciDependentDevice> Devices, string? Error)
{
    /// <summary>The largest reply <see cref="TryGetReplySize"/> sizes a buffer for (1 MiB): a count past it is not
    /// believed.</summary>
    public const int MaxReplySize = 1 << 20;

    /// <summary>The buffer a reply listing <paramref name="count"/> devices needs.</summary>
    /// <returns>False when that would exceed <see cref="MaxReplySize"/> (an implausible count).</returns>
    public static bool TryGetReplySize(uint count, out int size)
    {
        if (count > (MaxReplySize - VfioPciHotResetInfo.SizeOf) / VfioPciDependentDevice.SizeOf)
        {
            size = 0;
            return false;
        }
        size = VfioPciHotResetInfo.SizeOf + ((int)count * VfioPciDependentDevice.SizeOf);
        return true;
    }

    /// <summary>Decodes <paramref name="reply"/>, the whole buffer the ioctl filled.</summary>
    public static VfioPciHotResetInfoReply Decode(ReadOnlySpan<byte> reply)
    {
        if (!VfioPciHotResetInfo.TryRead(reply, out VfioPciHotResetInfo info))
        {
            VfioPciHotResetInfo.TryRead(reply, Math.Min(reply.Length, VfioPciHotResetInfo.SizeOf), out info);
            return new VfioPciHotResetInfoReply(info, [],
                $"a 0x{reply.Length:x}-byte reply is shorter than the 0x{VfioPciHotResetInfo.SizeOf:x}-byte struct");
        }
        var devices = new List<VfioPciDependentDevice>();
        for (uint i = 0; i < info.Count; i++)
        {
            long at = VfioPciHotResetInfo.Offsets.Devices + ((long)i * VfioPciDependentDevice.SizeOf);
            if (!VfioCapabilityChain.TryReadAt(reply, at, out VfioPciDependentDevice device))
            {
                return new VfioPciHotResetInfoReply(info, devices,
                    $"device {i} of {info.Count} at 0x{at:x} does not fit a 0x{reply.Length:x}-byte reply");
            }
            devices.Add(device);
        }
        return new VfioPciHotResetInfoReply(info, devices, null);
    }
}
