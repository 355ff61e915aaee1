using System.Buffers.Binary;
using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>
/// The argsz negotiation of VFIO's GET_INFO ioctls: call with the struct's size, and when the kernel answers a larger
/// <c>argsz</c> (capabilities did not fit), call again with a buffer that large — as QEMU and vfio-ioctls do.
/// </summary>
internal static class InfoQuery
{
    /// <summary>Largest reply the client accepts (a kernel asking for more is treated as a malformed reply).</summary>
    public const int MaxReply = 1 << 20;

    /// <summary>Runs the query and returns the buffer the final call filled.</summary>
    /// <param name="sys">The system-call surface.</param>
    /// <param name="fd">The fd the ioctl goes to.</param>
    /// <param name="request">The GET_INFO request code.</param>
    /// <param name="minimum">The struct's size: the first call's argsz.</param>
    /// <param name="fill">Writes the request's input fields (other than argsz) into a fresh buffer.</param>
    /// <param name="operation">Names the call for errors.</param>
    public static byte[] Run(ISyscallSurface sys, int fd, uint request, int minimum, Action<byte[]>? fill, Func<string> operation)
    {
        int size = minimum;
        for (int attempt = 0; ; attempt++)
        {
            byte[] buffer = new byte[size];
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)size);
            fill?.Invoke(buffer);
            Syscall.Ioctl(sys, fd, request, buffer, operation);
            uint wanted = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
            if (wanted <= (uint)size)
            {
                return buffer;
            }
            if (wanted > MaxReply || attempt > 0)
            {
                throw new VfioException(operation(), Errno.None,
                    $"the reply asks for argsz 0x{wanted:x} after a 0x{size:x}-byte buffer");
            }
            size = (int)wanted;
        }
    }
}
