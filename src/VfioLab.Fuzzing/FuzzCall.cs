using System.Globalization;

namespace VfioLab.Fuzzing;

/// <summary>One ioctl of the campaign: the fd and its kind, the request, and the argument — a buffer
/// (<see cref="Buffer"/> alone), the buffer written at <see cref="Value"/> in process memory and passed by
/// pointer (both set), or an integer (<see cref="Value"/> alone).</summary>
/// <param name="Fd">The fd number.</param>
/// <param name="Kind">What the fd is in the rig (<c>container-v2</c>, <c>device-mdev</c>, <c>fd-closed</c>, ...).</param>
/// <param name="Request">The request code.</param>
/// <param name="Buffer">The argument bytes, or null for an integer argument.</param>
/// <param name="Value">The integer argument or the pointer the buffer is written at.</param>
internal sealed record FuzzCall(int Fd, string Kind, uint Request, byte[]? Buffer, ulong? Value)
{
    /// <summary>The argument bytes as hex, for reports and scenario files.</summary>
    public string Hex => Buffer is null ? string.Empty : Convert.ToHexString(Buffer).ToLowerInvariant();

    /// <summary>The call as a scenario step (the raw <c>ioctl</c> step, or a <c>write</c> then an <c>ioctl</c>
    /// passing the pointer), expecting <paramref name="expect"/> (an errno name or <c>ok</c>).</summary>
    public IEnumerable<string> AsSteps(string expect)
    {
        string request = string.Create(CultureInfo.InvariantCulture, $"0x{Request:x}");
        if (Buffer is not null && Value is ulong at)
        {
            if (Buffer.Length > 0)
            {
                yield return string.Create(CultureInfo.InvariantCulture, $"  - write: {{ vaddr: 0x{at:x}, data: \"{Hex}\" }}");
            }
            yield return string.Create(CultureInfo.InvariantCulture, $"  - ioctl: {{ fd: {Fd}, request: {request}, value: 0x{at:x}, expect: {expect} }}");
        }
        else if (Buffer is not null)
        {
            yield return Buffer.Length == 0
                ? string.Create(CultureInfo.InvariantCulture, $"  - ioctl: {{ fd: {Fd}, request: {request}, arg: \"\", expect: {expect} }}")
                : string.Create(CultureInfo.InvariantCulture, $"  - ioctl: {{ fd: {Fd}, request: {request}, arg: \"{Hex}\", expect: {expect} }}");
        }
        else
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"  - ioctl: {{ fd: {Fd}, request: {request}, value: 0x{Value:x}, expect: {expect} }}");
        }
    }

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"ioctl(fd {Fd} [{Kind}], 0x{Request:x}, ") +
        (Buffer is null ? string.Create(CultureInfo.InvariantCulture, $"0x{Value:x})")
            : Value is ulong at ? string.Create(CultureInfo.InvariantCulture, $"&0x{at:x} = {Hex})") : $"{Hex})");
}
