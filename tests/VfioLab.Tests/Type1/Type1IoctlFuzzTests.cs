using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Host;
using VfioLab.Iommu;

namespace VfioLab.Tests.Type1;

/// <summary>
/// Seeded random and mutated arguments for every type1 container ioctl, on a container with two
/// domains, mappings and dirty tracking on: the model answers each with a result or an errno, never
/// an exception, and the invariant checker stays clean after every call.
/// </summary>
public sealed class Type1IoctlFuzzTests
{
    private static readonly uint[] Requests = [VfioIoctl.IommuGetInfo, VfioIoctl.IommuMapDma, VfioIoctl.IommuUnmapDma, VfioIoctl.IommuDirtyPages, VfioIoctl.CheckExtension, 0x3b7f];

    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(3UL)]
    public void ContainerIoctls_RandomArguments_AnswerWithoutExceptionAndKeepInvariants(ulong seed)
    {
        var t = new Type1TestHost(otherIommu: IommuHardwareProfile.VtD.WithOverrides(PageSizeBitmap.Size4K | PageSizeBitmap.Size2M, null, null, null, false));
        (int c, _) = t.Container();
        t.AddGroup(c, Type1TestHost.OtherIommuGroup);
        ulong buf = t.MmapAnonymous(8 * Type1TestHost.MiB);
        ulong ro = t.MmapReadOnly(64 * Type1TestHost.KiB);
        Assert.Equal(0, t.Map(c, 0x100000, buf, 4 * Type1TestHost.MiB));
        Assert.Equal(0, t.Dirty(c, DirtyPagesFlags.Start));
        var checker = new InvariantChecker(t.Host);
        var rng = new SplitMix64(seed);
        ulong[] interesting = [0, 1, 0xfff, 0x1000, 0x100000, 0x200000, 0x400000, buf, buf + 0x1000, ro, 0xfee00000,
            AddressSpace.TaskSize - 8, AddressSpace.TaskSize, ulong.MaxValue, ulong.MaxValue - 0xfff, 1UL << 63, 8 * Type1TestHost.MiB];

        var succeeded = new Dictionary<uint, int>();
        var errnos = new HashSet<long>();
        for (int i = 0; i < 3000; i++)
        {
            uint request = Requests[rng.Next() % (ulong)Requests.Length];
            long ret;
            if (request == VfioIoctl.CheckExtension || rng.Next() % 16 == 0)
            {
                ret = t.Sys.Ioctl(c, request, rng.Next() % 4 == 0 ? rng.Next() : rng.Next() % 16);
            }
            else
            {
                var arg = new byte[(int)(rng.Next() % 72)];
                for (int k = 0; k + 8 <= arg.Length; k += 8)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(arg.AsSpan(k), rng.Next() % 3 == 0 ? rng.Next() : interesting[rng.Next() % (ulong)interesting.Length]);
                }
                if (arg.Length >= 8)
                {
                    // A plausible argsz and a small flags word most of the time, so calls get past the header.
                    BinaryPrimitives.WriteUInt32LittleEndian(arg, rng.Next() % 4 == 0 ? (uint)rng.Next() : (uint)arg.Length);
                    BinaryPrimitives.WriteUInt32LittleEndian(arg.AsSpan(4), rng.Next() % 4 == 0 ? (uint)rng.Next() : (uint)(rng.Next() % 8));
                }
                ret = t.Sys.Ioctl(c, request, arg);
            }
            Assert.True(ret >= 0 || Enum.IsDefined((Errno)(int)-ret), $"seed {seed} call {i}: request 0x{request:x} returned {ret}");
            if (ret >= 0)
            {
                succeeded[request] = succeeded.GetValueOrDefault(request) + 1;
            }
            else
            {
                errnos.Add(ret);
            }
            IReadOnlyList<InvariantViolation> found = checker.Check();
            Assert.True(found.Count == 0, $"seed {seed} call {i}: request 0x{request:x} -> {ret}: " + string.Join("; ", found.Select(v => $"{v.Invariant}: {v.Message}")));
        }
        // The campaign must reach past the argument checks, not only bounce off them.
        Assert.True(succeeded.GetValueOrDefault(VfioIoctl.IommuGetInfo) > 0 && succeeded.GetValueOrDefault(VfioIoctl.IommuDirtyPages) > 0 &&
            succeeded.GetValueOrDefault(VfioIoctl.IommuUnmapDma) > 0 && errnos.Count >= 4,
            $"seed {seed}: successes {string.Join(", ", succeeded.Select(kv => $"0x{kv.Key:x}={kv.Value}"))}; errnos {string.Join(", ", errnos)}");
    }
}
