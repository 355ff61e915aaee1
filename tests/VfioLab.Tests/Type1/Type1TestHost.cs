using System.Buffers.Binary;
using VfioLab.Abi;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;
using VfioLab.Type1;
using VfioLab.Vfio;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Tests.Type1;

/// <summary>
/// A host with the real type1 backend: a GPU (group 1) and a NIC (group 2) behind the host IOMMU, an
/// optional third device behind a second IOMMU with other page sizes (group 3), an mdev (group 10) and optionally a second (group 11);
/// one process with a configurable memlock limit. Helpers return raw syscall results (&gt;= 0 or -errno)
/// so tests assert the exact errno, then the state.
/// </summary>
internal sealed class Type1TestHost
{
    public const ulong KiB = 1UL << 10;
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;

    public const int GpuGroup = 1;
    public const int NicGroup = 2;
    public const int OtherIommuGroup = 3;
    public const int MdevGroup = 10;
    public const int Mdev2Group = 11;
    public const string GpuName = "0000:01:00.0";
    public const string NicName = "0000:02:00.0";
    public const string OtherName = "0000:03:00.0";

    public static readonly Guid MdevUuid = new("5a0e2f6c-1d7b-4c43-9a53-0c3bd0b6f001");
    public static readonly Guid Mdev2Uuid = new("5a0e2f6c-1d7b-4c43-9a53-0c3bd0b6f002");

    /// <param name="memory">Host RAM.</param>
    /// <param name="pageShift">Host PAGE_SHIFT (12, 14 or 16).</param>
    /// <param name="iommu">The host IOMMU (GPU and NIC).</param>
    /// <param name="otherIommu">When set, a third device in group 3 behind an IOMMU of this profile.</param>
    /// <param name="memlock">RLIMIT_MEMLOCK of the process in bytes.</param>
    /// <param name="kernel">Profile and module parameters.</param>
    /// <param name="layout">Frame layout (contiguous by default).</param>
    /// <param name="mdevMisbehaving">The mdev's vendor driver ignores unmap notifications.</param>
    /// <param name="secondMdev">A second mdev (group 11) with a well-behaved driver.</param>
    /// <param name="type1">Type1 switches instead of the profile's (historical behaviour).</param>
    public Type1TestHost(ulong memory = 256 * MiB, int pageShift = 12, IommuHardwareProfile? iommu = null, IommuHardwareProfile? otherIommu = null,
        ulong memlock = ulong.MaxValue, KernelSettings? kernel = null, FrameLayout? layout = null, bool capIpcLock = false,
        bool mdevMisbehaving = false, bool secondMdev = false, Type1Behavior? type1 = null)
    {
        Host = new SimulatedHost(memory, pageShift, layout ?? FrameLayout.Contiguous, iommu ?? IommuHardwareProfile.VtD, kernel ?? KernelSettings.Default);
        if (type1 is null)
        {
            Driver = Host.RegisterType1();
        }
        else
        {
            Driver = new VfioIommuType1Driver(Host.Machine, type1);
            Host.RegisterIommuDriver(Driver);
        }
        Check(Host.AddPciDevice("gpu", PciAddress.Parse(GpuName), [new PciBarRequest(0, 16 * MiB)], DriverBinding.Vfio, GpuGroup));
        Check(Host.AddPciDevice("nic", PciAddress.Parse(NicName), [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, NicGroup));
        if (otherIommu is not null)
        {
            Check(Host.AddPciDevice("other", PciAddress.Parse(OtherName), [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, OtherIommuGroup, otherIommu));
        }
        Check(Host.AddMdevDevice("mdev", MdevUuid, new MdevVendorDriver(mdevMisbehaving, Host.Machine.PageShift), MdevGroup));
        if (secondMdev)
        {
            Check(Host.AddMdevDevice("mdev2", Mdev2Uuid, new MdevVendorDriver(misbehaving: false, Host.Machine.PageShift), Mdev2Group));
        }
        Host.Seal();
        Process = Host.Spawn("vmm", memlock, capIpcLock);
    }

    public SimulatedHost Host { get; }

    public VfioIommuType1Driver Driver { get; }

    public Process Process { get; }

    public ISyscallSurface Sys => Process.Syscalls;

    public Machine Machine => Host.Machine;

    public ulong PageSize => Host.Machine.PageSize;

    /// <summary>locked_vm of the process's mm, in pages.</summary>
    public ulong LockedVmPages => Process.LastMm.LockedVm;

    /// <summary>Distinct pinned host frames.</summary>
    public ulong PinnedFrames => Host.Machine.Memory.PinnedFrameCount;

    /// <summary>Pins of all frames, counted with multiplicity.</summary>
    public ulong TotalPins => Host.Machine.Memory.TotalPins;

    public IommuGroup IommuGroup(int number) => Host.IommuGroups[number];

    /// <summary>The IOMMU domain group <paramref name="number"/> translates through, or null.</summary>
    public IommuDomain? DomainOf(int number) => IommuGroup(number).Domain;

    public int OpenContainer() => Opened(Sys.Open("/dev/vfio/vfio"));

    public int OpenGroup(int number) => Opened(Sys.Open($"/dev/vfio/{number}"));

    public long SetContainer(int groupFd, int containerFd)
    {
        Span<byte> arg = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(arg, containerFd);
        return Sys.Ioctl(groupFd, VfioIoctl.GroupSetContainer, arg);
    }

    public long UnsetContainer(int groupFd) => Sys.Ioctl(groupFd, VfioIoctl.GroupUnsetContainer, 0);

    public long SetIommu(int containerFd, uint type = VfioExtension.Type1v2Iommu) => Sys.Ioctl(containerFd, VfioIoctl.SetIommu, type);

    /// <summary>A container with group <paramref name="group"/> in it and SET_IOMMU of <paramref name="type"/> done.</summary>
    public (int Container, int Group) Container(int group = GpuGroup, uint type = VfioExtension.Type1v2Iommu)
    {
        int c = OpenContainer();
        int g = OpenGroup(group);
        Assert.Equal(0, SetContainer(g, c));
        Assert.Equal(0, SetIommu(c, type));
        return (c, g);
    }

    /// <summary>Adds another group to an existing container; returns the group fd (asserting success).</summary>
    public int AddGroup(int containerFd, int group)
    {
        int g = OpenGroup(group);
        Assert.Equal(0, SetContainer(g, containerFd));
        return g;
    }

    /// <summary>The type1 state behind a container fd.</summary>
    public VfioIommu Backend(int containerFd)
    {
        Assert.True(Process.Fds.TryGet(containerFd, out OpenFile file));
        file.Put();
        VfioContainer container = ((VfioContainerFile)file.Operations).Container;
        return (VfioIommu)(container.Iommu ?? throw new InvalidOperationException("no backend set"));
    }

    /// <summary>Anonymous private memory, read-write, optionally populated; returns its address.</summary>
    public ulong MmapAnonymous(ulong size, bool populate = false, MmapFlags extra = MmapFlags.None) =>
        Mapped(Sys.Mmap(0, size, MemoryProtection.Read | MemoryProtection.Write,
            MmapFlags.Private | MmapFlags.Anonymous | extra | (populate ? MmapFlags.Populate : MmapFlags.None), -1, 0));

    /// <summary>Hugetlb memory with pages of <paramref name="hugeFlag"/> (<see cref="MmapFlags.Huge2MiB"/> or <see cref="MmapFlags.Huge1GiB"/>).</summary>
    public ulong MmapHuge(ulong size, MmapFlags hugeFlag) =>
        Mapped(Sys.Mmap(0, size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous | MmapFlags.HugeTlb | hugeFlag, -1, 0));

    /// <summary>Read-only anonymous memory.</summary>
    public ulong MmapReadOnly(ulong size) =>
        Mapped(Sys.Mmap(0, size, MemoryProtection.Read, MmapFlags.Private | MmapFlags.Anonymous, -1, 0));

    /// <summary>VFIO_IOMMU_MAP_DMA through the syscall surface.</summary>
    public long Map(int containerFd, ulong iova, ulong vaddr, ulong size, DmaMapFlags flags = DmaMapFlags.Read | DmaMapFlags.Write, uint argsz = VfioIommuType1DmaMap.SizeOf)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap { Argsz = argsz, Flags = flags, Vaddr = vaddr, Iova = iova, Size = size }.Write(buf);
        return Sys.Ioctl(containerFd, VfioIoctl.IommuMapDma, buf);
    }

    /// <summary>VFIO_IOMMU_UNMAP_DMA without a bitmap: the return value and the size written back.</summary>
    public (long Ret, ulong Size) Unmap(int containerFd, ulong iova, ulong size, DmaUnmapFlags flags = DmaUnmapFlags.None)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Flags = flags, Iova = iova, Size = size }.Write(buf);
        long ret = Sys.Ioctl(containerFd, VfioIoctl.IommuUnmapDma, buf);
        VfioIommuType1DmaUnmap.TryRead(buf, out VfioIommuType1DmaUnmap back);
        return (ret, back.Size);
    }

    /// <summary>VFIO_IOMMU_DIRTY_PAGES with START or STOP.</summary>
    public long Dirty(int containerFd, DirtyPagesFlags flags)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DirtyBitmap.SizeOf];
        new VfioIommuType1DirtyBitmap { Argsz = VfioIommuType1DirtyBitmap.SizeOf, Flags = flags }.Write(buf);
        return Sys.Ioctl(containerFd, VfioIoctl.IommuDirtyPages, buf);
    }

    /// <summary>Reads <paramref name="count"/> u64 words of process memory (a user bitmap).</summary>
    public ulong[] ReadWords(ulong address, int count)
    {
        var bytes = new byte[count * 8];
        Assert.Equal(0, Sys.ReadMemory(address, bytes));
        var words = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            words[i] = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(i * 8));
        }
        return words;
    }

    private static int Opened(int fd)
    {
        Assert.True(fd >= 0, $"open failed: {ErrnoExtensions.FromReturn(fd)}");
        return fd;
    }

    private static ulong Mapped(long address)
    {
        Assert.True(address >= 0, $"mmap failed: {ErrnoExtensions.FromReturn(address)}");
        return (ulong)address;
    }

    private static void Check(string? error) => Assert.True(error is null, error);
}
