using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Bench;

/// <summary>
/// Managed memory retained per live DMA mapping (target: under 256 bytes): heap size after a full
/// collection, before and after creating 65,535 4 KiB mappings, divided by their number. Not a
/// BenchmarkDotNet benchmark (that measures allocation per operation, not what stays live); run with
/// <c>--memory-per-mapping</c>.
/// </summary>
internal static class Type1MemoryProbe
{
    public static void Run(TextWriter output)
    {
        var rig = new Type1Rig(2UL << 30, FrameLayout.Contiguous, dmaEntryLimit: 65535);
        ulong ram = rig.Mmap(65535 * 4096UL, MmapFlags.Populate);
        rig.MapOrThrow(0x1_0000_0000, ram, 4096);
        rig.UnmapOrThrow(0x1_0000_0000, 4096);
        long before = GC.GetTotalMemory(forceFullCollection: true);
        for (ulong i = 0; i < 65535; i++)
        {
            rig.MapOrThrow(0x1_0000_0000 + (i * 8192), ram + (i * 4096), 4096);
        }
        long after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(rig);
        output.WriteLine($"65535 live 4 KiB mappings: {after - before} bytes retained, {(after - before) / 65535.0:F1} bytes per mapping");
    }
}
