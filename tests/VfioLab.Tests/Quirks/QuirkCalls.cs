using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Host;
using VfioLab.Simulation;
using VfioLab.Tests.Type1;

namespace VfioLab.Tests.Quirks;

/// <summary>Helpers shared by the quirk tests: a host under one historical quirk, MAP/UNMAP from any
/// process of it, and the invariants the checker reports.</summary>
internal static class QuirkCalls
{
    /// <summary>A type1 test host with the seeds profile and the given quirks switched on (none: today).</summary>
    public static Type1TestHost Host(IReadOnlyList<string> quirks, ulong memory = 256 * Type1TestHost.MiB, int pageShift = 12,
        ulong memlock = ulong.MaxValue, VfioLab.Iommu.IommuHardwareProfile? iommu = null) =>
        new(memory: memory, pageShift: pageShift, memlock: memlock, iommu: iommu, kernel: new KernelSettings(KernelSettings.Seeds, quirks));

    /// <summary>VFIO_IOMMU_MAP_DMA (read-write) issued by <paramref name="p"/>: 0 or -errno.</summary>
    public static long Map(Process p, int containerFd, ulong iova, ulong vaddr, ulong size)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap
        {
            Argsz = VfioIommuType1DmaMap.SizeOf,
            Flags = DmaMapFlags.Read | DmaMapFlags.Write,
            Vaddr = vaddr,
            Iova = iova,
            Size = size,
        }.Write(buf);
        return p.Syscalls.Ioctl(containerFd, VfioIoctl.IommuMapDma, buf);
    }

    /// <summary>VFIO_IOMMU_UNMAP_DMA issued by <paramref name="p"/>: the return value and the size written back.</summary>
    public static (long Ret, ulong Size) Unmap(Process p, int containerFd, ulong iova, ulong size, DmaUnmapFlags flags = DmaUnmapFlags.None)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Flags = flags, Iova = iova, Size = size }.Write(buf);
        long ret = p.Syscalls.Ioctl(containerFd, VfioIoctl.IommuUnmapDma, buf);
        VfioIommuType1DmaUnmap.TryRead(buf, out VfioIommuType1DmaUnmap back);
        return (ret, back.Size);
    }

    /// <summary>The distinct invariant names the checker reports now.</summary>
    public static string[] Violations(Type1TestHost t) => [.. new InvariantChecker(t.Host).Check().Select(v => v.Invariant).Distinct().Order(StringComparer.Ordinal)];
}
