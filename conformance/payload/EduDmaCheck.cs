using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Linux;

namespace VfioLab.Conformance.Payload;

/// <summary>
/// <c>rig-payload edu-dma</c>: the edu device's DMA through a type1 container on the real kernel, the way the
/// scenario runner's <c>dma</c> steps will use it: a round trip through mapped memory, a device write to an unmapped
/// IOVA that must not land, and a device read of an unmapped IOVA (the blocked read hands the device zeros).
/// </summary>
internal sealed class EduDmaCheck(TextWriter output)
{
    /// <summary>Two pages: the source of the first transfer, then the destination of the others. Below 256 MiB for
    /// the edu's DMA mask, and inside the usable IOVA ranges of VT-d (39 and 48 bits) and virtio-iommu alike.</summary>
    private const ulong Iova = 0x100000;

    private const ulong PageSize = 0x1000;
    private const ulong Size = 2 * PageSize;
    private const int Count = 0x800;

    private static readonly TimeSpan DmaTimeout = TimeSpan.FromSeconds(30);

    private int _failed;
    private int _checks;

    /// <summary>Runs the checks; returns 0 when all pass, 1 when one fails, 2 when there is no edu to test.</summary>
    public int Run()
    {
        PciFunction? edu = PciFunction.BoundToVfioPci().FirstOrDefault(f => f.Vendor == EduDevice.Vendor && f.DeviceId == EduDevice.DeviceId);
        if (edu is null)
        {
            output.WriteLine("edu-dma: no edu device (1234:11e8) is bound to vfio-pci");
            return 2;
        }
        var sys = new LinuxSyscalls();
        using var container = Container.Open(sys);
        using var group = Group.Open(sys, edu.Group);
        group.SetContainer(container);
        container.SelectIommu();
        using Device device = group.OpenDevice(edu.Address);
        var engine = new EduDevice(sys, device.Fd, device.Name);
        output.WriteLine($"edu {edu.Address} group {edu.Group}");

        Check("ident register", engine.Ident == EduDevice.ExpectedIdent, $"0x{engine.Ident:x8}, want 0x{EduDevice.ExpectedIdent:x8}");
        ushort command = engine.EnableBusMaster();
        Check("bus master and memory enabled", (command & 0x6) == 0x6, $"PCI_COMMAND 0x{command:x4}");

        ulong buffer = (ulong)Syscall(sys.Mmap(0, Size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0), "mmap");
        byte[] pattern = new byte[Count];
        for (int i = 0; i < pattern.Length; i++)
        {
            pattern[i] = (byte)((i * 7) + 1);
        }
        byte[] seen = new byte[Count];
        byte[] zeros = new byte[Count];
        Syscall(sys.WriteMemory(buffer, pattern), "write source page");
        Syscall(sys.WriteMemory(buffer + PageSize, zeros), "clear destination page");

        container.MapDma(Iova, buffer, Size);
        output.WriteLine($"map_dma iova 0x{Iova:x} size 0x{Size:x}");
        engine.CopyToDevice(Iova, 0, Count, DmaTimeout);
        engine.CopyFromDevice(0, Iova + PageSize, Count, DmaTimeout);
        Syscall(sys.ReadMemory(buffer + PageSize, seen), "read destination page");
        Check($"round trip: RAM -> device -> RAM, 0x{Count:x} bytes through iova 0x{Iova:x}", seen.AsSpan().SequenceEqual(pattern), Describe(seen));

        // The device buffer still holds the pattern: a write that landed would bring it back into the cleared page.
        Syscall(sys.WriteMemory(buffer + PageSize, zeros), "clear destination page");
        ulong unmapped = container.UnmapDma(Iova, Size);
        Check("unmap_dma reports the size unmapped", unmapped == Size, $"0x{unmapped:x}");
        engine.CopyFromDevice(0, Iova + PageSize, Count, DmaTimeout);
        Syscall(sys.ReadMemory(buffer + PageSize, seen), "read destination page");
        Check("device write to an unmapped IOVA does not land", seen.AsSpan().SequenceEqual(zeros), Describe(seen));

        // Read from the unmapped IOVA into the device buffer, map again, and bring the buffer out over a marker:
        // zeros mean the blocked read handed the device zeros, the pattern that it left the buffer alone.
        engine.CopyToDevice(Iova, 0, Count, DmaTimeout);
        container.MapDma(Iova, buffer, Size);
        byte[] marker = new byte[Count];
        Array.Fill(marker, (byte)0xaa);
        Syscall(sys.WriteMemory(buffer + PageSize, marker), "mark destination page");
        engine.CopyFromDevice(0, Iova + PageSize, Count, DmaTimeout);
        Syscall(sys.ReadMemory(buffer + PageSize, seen), "read destination page");
        Check("device read of an unmapped IOVA gets zeros", seen.AsSpan().SequenceEqual(zeros), Describe(seen));

        container.UnmapAll();
        sys.Munmap(buffer, Size);
        output.WriteLine($"edu-dma: {_checks} checks, {_failed} failed");
        return _failed == 0 ? 0 : 1;
    }

    private void Check(string what, bool passed, string detail)
    {
        _checks++;
        if (!passed)
        {
            _failed++;
        }
        output.WriteLine(passed ? $"ok: {what}" : $"FAILED: {what}: {detail}");
    }

    private static string Describe(byte[] bytes) =>
        $"first bytes {Convert.ToHexString(bytes, 0, 8)}, {bytes.Count(b => b == 0)} of {bytes.Length} zero";

    private static long Syscall(long result, string what) =>
        result >= 0 ? result : throw new InvalidOperationException($"{what}: errno {-result}");
}
