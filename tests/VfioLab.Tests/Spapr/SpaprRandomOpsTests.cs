using VfioLab.Abi;

namespace VfioLab.Tests.Spapr;

/// <summary>A seeded random walk over every sPAPR call with edge-case arguments, from the owner and from a
/// forked child: no exception, and the invariant checker clean after every call (STYLE.md 17: the seed is
/// printed on failure).</summary>
public sealed class SpaprRandomOpsTests
{
    private const ulong KiB = SpaprTestHost.KiB;
    private const ulong MiB = SpaprTestHost.MiB;

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, true)]
    [InlineData(4, false)]
    [InlineData(5, true)]
    [InlineData(6, false)]
    [InlineData(7, true)]
    [InlineData(8, true)]
    public void RandomCalls_AnyArguments_NeverThrowAndKeepInvariants(int seed, bool v2)
    {
        var rng = new Random(seed);
        var h = new SpaprTestHost(memory: 2 * SpaprTestHost.GiB, memlock: 3 * SpaprTestHost.GiB);
        (int c, _) = h.Container(v2);
        ulong ram = h.MmapAnonymous(8 * MiB);
        // The owner claims the container first (a v2 registration of half the memory, or v1's ENABLE).
        Assert.Equal(0, v2 ? h.Register(c, ram, 4 * MiB) : h.Enable(c));
        ISyscallSurface child = h.Sys.Fork();
        ulong[] starts = [0, Bases.BypassBase];
        int mapped = 0;
        for (int step = 0; step < 400; step++)
        {
            ISyscallSurface who = rng.Next(10) == 0 ? child : h.Sys;
            ulong vaddr = ram + (Pick(rng, [0, 4 * KiB, 64 * KiB, 1 * MiB, 7 * MiB, 8 * MiB]));
            ulong size = Pick(rng, [0, 4 * KiB, 64 * KiB, 1 * MiB, 2 * MiB, 9 * MiB, ulong.MaxValue - 0xfff]);
            ulong iova = Pick(rng, starts) + Pick(rng, [0, 0x800, 64 * KiB, 1 * MiB, (2 * SpaprTestHost.GiB) - (64 * KiB), 4 * SpaprTestHost.GiB]);
            string op = string.Empty;
            try
            {
                switch (rng.Next(9))
                {
                    case 0:
                        op = "enable";
                        h.Enable(c, who);
                        break;
                    case 1:
                        op = "disable";
                        who.Ioctl(c, VfioIoctl.IommuDisable, 0);
                        break;
                    case 2:
                    case 3:
                        op = $"map 0x{iova:x} 0x{vaddr:x} 0x{size:x}";
                        mapped += h.Map(c, iova, vaddr, size, (DmaMapFlags)rng.Next(4), sys: who) == 0 && size != 0 ? 1 : 0;
                        break;
                    case 4:
                        op = $"unmap 0x{iova:x} 0x{size:x}";
                        h.Unmap(c, iova, size, sys: who);
                        break;
                    case 5:
                        op = $"register 0x{vaddr:x} 0x{size:x}";
                        h.Register(c, vaddr, size, sys: who);
                        break;
                    case 6:
                        op = $"unregister 0x{vaddr:x} 0x{size:x}";
                        h.Unregister(c, vaddr, size, sys: who);
                        break;
                    case 7:
                        // Mostly valid geometry, with the edge cases mixed in.
                        uint shift = (uint)Pick(rng, [12, 16, 16, 24, 13, 64]);
                        ulong window = Pick(rng, [1UL << 30, 1UL << 30, 1UL << 20, 3UL << 30, 1UL << 62]);
                        uint levels = (uint)Pick(rng, [1, 1, 2, 0, 6]);
                        op = $"create {shift} 0x{window:x} {levels}";
                        h.Create(c, shift, window, levels, sys: who);
                        break;
                    case 8 when rng.Next(3) == 0:
                        op = $"remove 0x{iova:x}";
                        h.Remove(c, iova, sys: who);
                        break;
                    default:
                        op = $"map 0x{iova & 0xfff_ffff:x} 0x{vaddr:x} 0x{size:x}";
                        long mr2 = h.Map(c, iova & 0xfff_ffff, vaddr, size, DmaMapFlags.Read | DmaMapFlags.Write, sys: who);
                        mapped += mr2 == 0 && size != 0 ? 1 : 0;
                        break;
                }
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed} step {step} {op}: {e}");
            }
            IReadOnlyList<VfioLab.Checks.InvariantViolation> found = h.Checker.Check();
            Assert.True(found.Count == 0, $"seed {seed} step {step} {op}: " + string.Join("; ", found.Select(v => $"{v.Invariant}: {v.Message}")));
        }
        Assert.True(mapped > 0, $"seed {seed}: the walk never mapped anything");
        h.Sys.Exit();
        child.Exit();
        Assert.Equal(0UL, h.TotalPins);
    }

    private static ulong Pick(Random rng, ulong[] values) => values[rng.Next(values.Length)];

    private static class Bases
    {
        public const ulong BypassBase = VfioLab.Iommu.TceTableGroup.BypassBase;
    }
}

