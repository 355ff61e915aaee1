using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Checks;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;
using VfioLab.Spapr;
using VfioLab.Vfio;

namespace VfioLab.Tests.Spapr;

/// <summary>
/// A POWER host with the real sPAPR TCE backend: a GPU (group 1) and a NIC (group 2), each its own PE behind
/// the spapr-tce IOMMU, and one process with a configurable memlock limit. Helpers return raw syscall results
/// (&gt;= 0 or -errno) so tests assert the exact value, then the state.
/// </summary>
internal sealed class SpaprTestHost
{
    public const ulong KiB = 1UL << 10;
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;
    public const int GpuGroup = 1;
    public const int NicGroup = 2;

    public SpaprTestHost(ulong memory = 1 * GiB, int pageShift = 16, ulong memlock = ulong.MaxValue, bool capIpcLock = false,
        KernelSettings? kernel = null, IommuHardwareProfile? iommu = null)
    {
        Host = new SimulatedHost(memory, pageShift, FrameLayout.Contiguous, iommu ?? IommuHardwareProfile.SpaprTce, kernel ?? KernelSettings.Default);
        Driver = Host.RegisterSpapr();
        Assert.Null(Host.AddPciDevice("gpu", PciAddress.Parse("0000:01:00.0"), [new PciBarRequest(0, 16 * MiB)], DriverBinding.Vfio, GpuGroup));
        Assert.Null(Host.AddPciDevice("nic", PciAddress.Parse("0000:02:00.0"), [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, NicGroup));
        Host.Seal();
        Process = Host.Spawn("qemu", memlock, capIpcLock);
        Checker = new InvariantChecker(Host);
    }

    public SimulatedHost Host { get; }

    public VfioIommuSpaprTceDriver Driver { get; }

    public Process Process { get; }

    public InvariantChecker Checker { get; }

    public ISyscallSurface Sys => Process.Syscalls;

    public ulong PageSize => Host.Machine.PageSize;

    public ulong LockedVmPages => Process.LastMm.LockedVm;

    public ulong LockedVmBytes => Process.LastMm.LockedVm << Host.Machine.PageShift;

    public ulong TotalPins => Host.Machine.Memory.TotalPins;

    public ulong PinnedFrames => Host.Machine.Memory.PinnedFrameCount;

    public StateDigest Digest() => StateDigest.Of(Host);

    public TceTableGroup Pe(int group) => Host.IommuGroups[group].TableGroup!;

    public ulong ValidTces(int group = GpuGroup) => Pe(group).ValidEntries;

    /// <summary>A container holding <paramref name="group"/> with SET_IOMMU of v1 or v2 done.</summary>
    public (int Container, int Group) Container(bool v2, int group = GpuGroup, ISyscallSurface? sys = null)
    {
        sys ??= Sys;
        int c = sys.Open("/dev/vfio/vfio");
        int g = sys.Open($"/dev/vfio/{group}");
        Assert.True(c >= 0 && g >= 0);
        Assert.Equal(0, SetContainer(g, c, sys));
        Assert.Equal(0, sys.Ioctl(c, VfioIoctl.SetIommu, v2 ? VfioExtension.SpaprTceV2Iommu : VfioExtension.SpaprTceIommu));
        return (c, g);
    }

    public long SetContainer(int groupFd, int containerFd, ISyscallSurface? sys = null)
    {
        Span<byte> arg = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(arg, containerFd);
        return (sys ?? Sys).Ioctl(groupFd, VfioIoctl.GroupSetContainer, arg);
    }

    public TceContainer Backend(int containerFd)
    {
        Assert.True(Process.Fds.TryGet(containerFd, out OpenFile file));
        file.Put();
        return (TceContainer)((VfioContainerFile)file.Operations).Container.Iommu!;
    }

    public long Enable(int c, ISyscallSurface? sys = null) => (sys ?? Sys).Ioctl(c, VfioIoctl.IommuEnable, 0);

    public long Disable(int c) => Sys.Ioctl(c, VfioIoctl.IommuDisable, 0);

    public long Map(int c, ulong iova, ulong vaddr, ulong size, DmaMapFlags flags = DmaMapFlags.Read | DmaMapFlags.Write,
        uint argsz = VfioIommuType1DmaMap.SizeOf, ISyscallSurface? sys = null)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap { Argsz = argsz, Flags = flags, Vaddr = vaddr, Iova = iova, Size = size }.Write(buf);
        return (sys ?? Sys).Ioctl(c, VfioIoctl.IommuMapDma, buf);
    }

    public (long Ret, ulong Size) Unmap(int c, ulong iova, ulong size, DmaUnmapFlags flags = DmaUnmapFlags.None, ISyscallSurface? sys = null)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Flags = flags, Iova = iova, Size = size }.Write(buf);
        long ret = (sys ?? Sys).Ioctl(c, VfioIoctl.IommuUnmapDma, buf);
        VfioIommuType1DmaUnmap.TryRead(buf, out VfioIommuType1DmaUnmap back);
        return (ret, back.Size);
    }

    public long Register(int c, ulong vaddr, ulong size, uint flags = 0, uint argsz = VfioIommuSpaprRegisterMemory.SizeOf, ISyscallSurface? sys = null) =>
        RegisterIoctl(c, VfioIoctl.IommuSpaprRegisterMemory, vaddr, size, flags, argsz, sys);

    public long Unregister(int c, ulong vaddr, ulong size, uint flags = 0, ISyscallSurface? sys = null) =>
        RegisterIoctl(c, VfioIoctl.IommuSpaprUnregisterMemory, vaddr, size, flags, VfioIommuSpaprRegisterMemory.SizeOf, sys);

    public (long Ret, ulong Start) Create(int c, uint pageShift, ulong windowSize, uint levels = 1, uint flags = 0, ISyscallSurface? sys = null)
    {
        Span<byte> buf = stackalloc byte[VfioIommuSpaprTceCreate.SizeOf];
        new VfioIommuSpaprTceCreate { Argsz = VfioIommuSpaprTceCreate.SizeOf, Flags = flags, PageShift = pageShift, WindowSize = windowSize, Levels = levels }.Write(buf);
        long ret = (sys ?? Sys).Ioctl(c, VfioIoctl.IommuSpaprTceCreate, buf);
        VfioIommuSpaprTceCreate.TryRead(buf, out VfioIommuSpaprTceCreate back);
        return (ret, back.StartAddr);
    }

    public long Remove(int c, ulong start, ISyscallSurface? sys = null)
    {
        Span<byte> buf = stackalloc byte[VfioIommuSpaprTceRemove.SizeOf];
        new VfioIommuSpaprTceRemove { Argsz = VfioIommuSpaprTceRemove.SizeOf, StartAddr = start }.Write(buf);
        return (sys ?? Sys).Ioctl(c, VfioIoctl.IommuSpaprTceRemove, buf);
    }

    public ulong MmapAnonymous(ulong size, ISyscallSurface? sys = null) =>
        Mapped((sys ?? Sys).Mmap(0, size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0));

    public ulong MmapHuge(ulong size, MmapFlags hugeFlag) =>
        Mapped(Sys.Mmap(0, size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | hugeFlag, -1, 0));

    public ulong MmapReadOnly(ulong size) => Mapped(Sys.Mmap(0, size, MemoryProtection.Read, MmapFlags.Private | MmapFlags.Anonymous, -1, 0));

    /// <summary>No invariant broken.</summary>
    public void AssertClean()
    {
        IReadOnlyList<InvariantViolation> found = Checker.Check();
        Assert.True(found.Count == 0, string.Join("; ", found.Select(v => $"{v.Invariant}: {v.Message}")));
    }

    /// <summary>Exactly the named invariant (possibly several times) is broken.</summary>
    public void AssertBroken(string invariant)
    {
        IReadOnlyList<InvariantViolation> found = Checker.Check();
        Assert.NotEmpty(found);
        Assert.All(found, v => Assert.Equal(invariant, v.Invariant));
    }

    private long RegisterIoctl(int c, uint request, ulong vaddr, ulong size, uint flags, uint argsz, ISyscallSurface? sys)
    {
        Span<byte> buf = stackalloc byte[VfioIommuSpaprRegisterMemory.SizeOf];
        new VfioIommuSpaprRegisterMemory { Argsz = argsz, Flags = flags, Vaddr = vaddr, Size = size }.Write(buf);
        return (sys ?? Sys).Ioctl(c, request, buf);
    }

    private static ulong Mapped(long address)
    {
        Assert.True(address >= 0, $"mmap failed: {ErrnoExtensions.FromReturn(address)}");
        return (ulong)address;
    }
}
