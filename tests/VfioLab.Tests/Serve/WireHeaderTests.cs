using System.Globalization;
using System.Text.RegularExpressions;
using VfioLab.Serve;
using VfioLab.Tests.Abi;

namespace VfioLab.Tests.Serve;

/// <summary>The server's constants are the header's: native/preload/vfiolab-wire.h is the one definition both sides
/// build against.</summary>
public sealed partial class WireHeaderTests
{
    private static Dictionary<string, ulong> HeaderValues()
    {
        string header = File.ReadAllText(Path.Combine(ConformanceProgram.FindRepositoryRoot(), "native", "preload", "vfiolab-wire.h"));
        var values = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (Match m in Definition().Matches(header))
        {
            string v = m.Groups[2].Value;
            values[m.Groups[1].Value] = v.StartsWith("0x", StringComparison.Ordinal)
                ? ulong.Parse(v.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
                : ulong.Parse(v, CultureInfo.InvariantCulture);
        }
        return values;
    }

    [Fact]
    public void Constants_EqualTheHeader()
    {
        Dictionary<string, ulong> h = HeaderValues();
        var expected = new Dictionary<string, ulong>
        {
            ["VFIOLAB_WIRE_VERSION"] = Wire.Version,
            ["VFIOLAB_WIRE_REQUEST_MAGIC"] = Wire.RequestMagic,
            ["VFIOLAB_WIRE_REPLY_MAGIC"] = Wire.ReplyMagic,
            ["VFIOLAB_WIRE_MAX_PAYLOAD"] = Wire.MaxPayload,
            ["VFIOLAB_REPLY_NEW_FILE"] = Wire.ReplyNewFile,
            ["VFIOLAB_OP_HELLO"] = Wire.Hello,
            ["VFIOLAB_OP_OPEN"] = Wire.Open,
            ["VFIOLAB_OP_ATTACH"] = Wire.Attach,
            ["VFIOLAB_OP_IOCTL"] = Wire.Ioctl,
            ["VFIOLAB_OP_PREAD"] = Wire.Pread,
            ["VFIOLAB_OP_PWRITE"] = Wire.Pwrite,
            ["VFIOLAB_OP_MMAP_PREPARE"] = Wire.MmapPrepare,
            ["VFIOLAB_OP_MMAP_COMMIT"] = Wire.MmapCommit,
            ["VFIOLAB_OP_MUNMAP"] = Wire.Munmap,
            ["VFIOLAB_OP_CTL_STATUS"] = Wire.CtlStatus,
            ["VFIOLAB_OP_CTL_CHECK"] = Wire.CtlCheck,
            ["VFIOLAB_OP_CTL_SIZING"] = Wire.CtlSizing,
            ["VFIOLAB_OP_CTL_DMA"] = Wire.CtlDma,
            ["VFIOLAB_OP_CTL_RESET"] = Wire.CtlReset,
            ["VFIOLAB_OP_CTL_UNPLUG"] = Wire.CtlUnplug,
            ["VFIOLAB_OP_CTL_RELEASE"] = Wire.CtlRelease,
            ["VFIOLAB_OP_CTL_RECORD_SAVE"] = Wire.CtlRecordSave,
        };
        var problems = new List<string>();
        foreach ((string name, ulong value) in expected)
        {
            if (!h.TryGetValue(name, out ulong inHeader))
            {
                problems.Add($"{name} is not in the header");
            }
            else if (inHeader != value)
            {
                problems.Add($"{name}: header {inHeader}, server {value}");
            }
        }
        foreach (string name in h.Keys.Where(k => k.StartsWith("VFIOLAB_OP_", StringComparison.Ordinal) && !expected.ContainsKey(k)))
        {
            problems.Add($"{name} is in the header but not known to the server");
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public void Headers_Are24BytesWithTheDocumentedOffsets()
    {
        byte[] request = new byte[Wire.HeaderSize];
        Wire.WriteRequest(request, Wire.Ioctl, 16, 1234, 7);
        Assert.Equal(new RequestHeader(Wire.RequestMagic, 1, Wire.Ioctl, 16, 1234, 7), RequestHeader.Read(request));
        Assert.Equal("56464c51" + "0100" + "1000" + "10000000" + "d2040000" + "0700000000000000", Convert.ToHexStringLower(request));
        byte[] reply = new byte[Wire.HeaderSize];
        Wire.WriteReply(reply, Wire.Ioctl, 8, Wire.ReplyNewFile, -14);
        Assert.Equal("56464c52" + "0100" + "1000" + "08000000" + "01000000" + "f2ffffffffffffff", Convert.ToHexStringLower(reply));
    }

    [GeneratedRegex(@"(?:#define\s+|^\s*)(VFIOLAB_[A-Z_]+)\s*=?\s*(0x[0-9a-fA-F]+|\d+)u?", RegexOptions.Multiline)]
    private static partial Regex Definition();
}
