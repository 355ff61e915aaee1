using System.Buffers.Binary;
using System.Text;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Host;
using VfioLab.Iommu;
using VfioLab.Pci;
using VfioLab.Simulation;
using VfioLab.Type1;
using VfioLab.Vfio;
using VfioLab.Vfio.Pci;

namespace VfioLab.Tests.DeviceMemory;

/// <summary>
/// A host for device memory and peer-to-peer tests, with the real type1 backend: a GPU with an audio
/// function on one slot (05:00.0 in group 5, 05:00.1 in group 6), a second GPU (07:00.0, group 7), a NIC
/// (08:00.0, group 8), and a slot mixing a vfio-pci function (09:00.0, group 9) with a function bound to a
/// host driver (09:00.1, group 10). One process with no memlock limit. Helpers return raw syscall results
/// (&gt;= 0 or -errno) so tests assert the errno, then the state.
/// </summary>
internal sealed class DeviceMemoryTestHost
{
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;

    public const string Gpu = "0000:05:00.0";
    public const string GpuAudio = "0000:05:00.1";
    public const string Gpu2 = "0000:07:00.0";
    public const string Nic = "0000:08:00.0";
    public const string Mixed = "0000:09:00.0";
    public const string MixedHost = "0000:09:00.1";

    public const int GpuGroup = 5;
    public const int GpuAudioGroup = 6;
    public const int Gpu2Group = 7;
    public const int NicGroup = 8;
    public const int MixedGroup = 9;
    public const int MixedHostGroup = 10;

    /// <summary>BAR0 of each GPU.</summary>
    public const ulong GpuBar0Size = 16 * MiB;

    /// <summary>BAR2 of the first GPU (64-bit, prefetchable).</summary>
    public const ulong GpuBar2Size = 64 * MiB;

    /// <param name="kernel">Profile, quirks and parameters.</param>
    /// <param name="gpuBar2Size">Size of the first GPU's BAR2.</param>
    /// <param name="leadingBarSize">When non-zero, a host-bound function (04:00.0, group 4) with a BAR of this size
    /// is placed first, so every later BAR lies above it (a big BAR pushes the others high).</param>
    public DeviceMemoryTestHost(KernelSettings? kernel = null, ulong gpuBar2Size = GpuBar2Size, ulong leadingBarSize = 0)
    {
        Host = new SimulatedHost(256 * MiB, 12, FrameLayout.Contiguous, IommuHardwareProfile.VtD, kernel ?? KernelSettings.Default);
        Host.RegisterType1();
        if (leadingBarSize != 0)
        {
            Add("lead", "0000:04:00.0", [new PciBarRequest(0, leadingBarSize)], DriverBinding.Host, 4);
        }
        Add("gpu", Gpu, [new PciBarRequest(0, GpuBar0Size), new PciBarRequest(2, gpuBar2Size, Prefetchable: true)], DriverBinding.Vfio, GpuGroup);
        Add("audio", GpuAudio, [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, GpuAudioGroup);
        Add("gpu2", Gpu2, [new PciBarRequest(0, GpuBar0Size)], DriverBinding.Vfio, Gpu2Group);
        Add("nic", Nic, [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, NicGroup);
        Add("mixed", Mixed, [new PciBarRequest(0, 1 * MiB)], DriverBinding.Vfio, MixedGroup);
        Add("mixedhost", MixedHost, [new PciBarRequest(0, 1 * MiB)], DriverBinding.Host, MixedHostGroup);
        Host.Seal();
        Process = Host.Spawn("vmm", ulong.MaxValue, capIpcLock: false);
        Checker = new InvariantChecker(Host);
    }

    public SimulatedHost Host { get; }

    public Process Process { get; }

    public InvariantChecker Checker { get; }

    public ISyscallSurface Sys => Process.Syscalls;

    public SimulatedDevice Device(string name) => Host.Devices[name];

    public PciFunction Function(string address) =>
        Host.Pci.TryGetFunction(PciAddress.Parse(address), out PciFunction? f) ? f! : throw new InvalidOperationException($"no function {address}");

    public VfioPciDevice PciState(string name) => VfioPciDriver.State(Device(name).Vfio!);

    /// <summary>The physical address of BAR <paramref name="index"/> of device <paramref name="name"/>.</summary>
    public ulong BarPhys(string name, int index = 0) => Device(name).Function!.Bar(index)!.Base.Value;

    public int OpenContainer() => Ok(Sys.Open("/dev/vfio/vfio"));

    public int OpenGroup(int number) => Ok(Sys.Open($"/dev/vfio/{number}"));

    public long SetContainer(int groupFd, int containerFd)
    {
        Span<byte> arg = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(arg, containerFd);
        return Sys.Ioctl(groupFd, VfioIoctl.GroupSetContainer, arg);
    }

    /// <summary>A TYPE1v2 container holding the given groups; returns the container fd and the group fds in order.</summary>
    public (int Container, int[] Groups) Container(params int[] groups)
    {
        int c = OpenContainer();
        int[] fds = new int[groups.Length];
        for (int i = 0; i < groups.Length; i++)
        {
            fds[i] = OpenGroup(groups[i]);
            Assert.Equal(0, SetContainer(fds[i], c));
            if (i == 0)
            {
                Assert.Equal(0, Sys.Ioctl(c, VfioIoctl.SetIommu, VfioExtension.Type1v2Iommu));
            }
        }
        return (c, fds);
    }

    public int DeviceFd(int groupFd, string name) => Ok((int)Sys.Ioctl(groupFd, VfioIoctl.GroupGetDeviceFd, [.. Encoding.UTF8.GetBytes(name), 0]));

    /// <summary>Sets or clears PCI_COMMAND_MEMORY through a config-space pwrite (what QEMU does).</summary>
    public void SetMemory(int deviceFd, bool on)
    {
        ulong offset = VfioPci.IndexToOffset(VfioPciRegionIndex.Config) + PciFunction.CommandOffset;
        byte[] b = new byte[2];
        Assert.Equal(2, Sys.Pread(deviceFd, b, offset));
        ushort cmd = BinaryPrimitives.ReadUInt16LittleEndian(b);
        cmd = on ? (ushort)(cmd | (ushort)PciCommand.Memory) : (ushort)(cmd & ~(ushort)PciCommand.Memory);
        BinaryPrimitives.WriteUInt16LittleEndian(b, cmd);
        Assert.Equal(2, Sys.Pwrite(deviceFd, b, offset));
    }

    /// <summary>mmap of <paramref name="size"/> bytes of BAR <paramref name="index"/> from <paramref name="offset"/>; raw result.</summary>
    public long MmapBar(int deviceFd, int index, ulong size, ulong offset = 0, MemoryProtection prot = MemoryProtection.Read | MemoryProtection.Write) =>
        Sys.Mmap(0, size, prot, MmapFlags.Shared, deviceFd, VfioPci.IndexToOffset((uint)index) + offset);

    /// <summary>mmap of a BAR, asserting success.</summary>
    public ulong MapBar(int deviceFd, int index, ulong size, ulong offset = 0)
    {
        long a = MmapBar(deviceFd, index, size, offset);
        Assert.True(a > 0, $"mmap BAR{index}: {ErrnoExtensions.FromReturn(a)}");
        return (ulong)a;
    }

    public ulong MmapAnonymous(ulong size)
    {
        long a = Sys.Mmap(0, size, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        Assert.True(a > 0);
        return (ulong)a;
    }

    /// <summary>VFIO_IOMMU_MAP_DMA; raw result.</summary>
    public long Map(int containerFd, ulong iova, ulong vaddr, ulong size, DmaMapFlags flags = DmaMapFlags.Read | DmaMapFlags.Write)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
        new VfioIommuType1DmaMap { Argsz = VfioIommuType1DmaMap.SizeOf, Flags = flags, Vaddr = vaddr, Iova = iova, Size = size }.Write(buf);
        return Sys.Ioctl(containerFd, VfioIoctl.IommuMapDma, buf);
    }

    /// <summary>VFIO_IOMMU_UNMAP_DMA; raw result and the size written back.</summary>
    public (long Ret, ulong Size) Unmap(int containerFd, ulong iova, ulong size)
    {
        Span<byte> buf = stackalloc byte[VfioIommuType1DmaUnmap.SizeOf];
        new VfioIommuType1DmaUnmap { Argsz = VfioIommuType1DmaUnmap.SizeOf, Iova = iova, Size = size }.Write(buf);
        long ret = Sys.Ioctl(containerFd, VfioIoctl.IommuUnmapDma, buf);
        VfioIommuType1DmaUnmap.TryRead(buf, out VfioIommuType1DmaUnmap back);
        return (ret, back.Size);
    }

    /// <summary>The type1 state behind a container fd.</summary>
    public VfioIommu Backend(int containerFd)
    {
        Assert.True(Process.Fds.TryGet(containerFd, out OpenFile file));
        file.Put();
        return (VfioIommu)((VfioContainerFile)file.Operations).Container.Iommu!;
    }

    /// <summary>What the IOMMU of device <paramref name="name"/> translates <paramref name="iova"/> to, or null.</summary>
    public ulong? Translate(string name, ulong iova)
    {
        IommuTranslation t = IommuDma.Translate(Device(name).Group, new Iova(iova), write: false);
        return t.Ok ? t.Phys.Value : null;
    }

    /// <summary>VFIO_DEVICE_GET_PCI_HOT_RESET_INFO with a buffer of <paramref name="argsz"/> bytes.</summary>
    public long HotResetInfo(int deviceFd, uint argsz, out byte[] buffer)
    {
        buffer = new byte[Math.Max(argsz, (uint)VfioPciHotResetInfo.SizeOf)];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, argsz);
        return Sys.Ioctl(deviceFd, VfioIoctl.DeviceGetPciHotResetInfo, buffer);
    }

    /// <summary>VFIO_DEVICE_PCI_HOT_RESET with the given group fds (count as given unless overridden).</summary>
    public long HotReset(int deviceFd, int[] groupFds, uint? count = null, uint flags = 0, uint? argsz = null)
    {
        byte[] buffer = new byte[VfioPciHotReset.SizeOf + (4 * groupFds.Length)];
        new VfioPciHotReset { Argsz = argsz ?? (uint)buffer.Length, Flags = flags, Count = count ?? (uint)groupFds.Length }.Write(buffer);
        for (int i = 0; i < groupFds.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(VfioPciHotReset.Offsets.GroupFds + (4 * i)), groupFds[i]);
        }
        return Sys.Ioctl(deviceFd, VfioIoctl.DevicePciHotReset, buffer);
    }

    /// <summary>Whether the process's page table maps <paramref name="address"/> now.</summary>
    public bool IsPresent(ulong address)
    {
        AddressSpace mm = Process.Mm!;
        mm.MmapReadLock();
        try
        {
            return mm.TryTranslateLocked(new HostVirtAddr(address), out _);
        }
        finally
        {
            mm.MmapReadUnlock();
        }
    }

    /// <summary>The names of the invariants broken now.</summary>
    public IReadOnlyList<string> Violations() => [.. Checker.Check().Select(v => v.Invariant)];

    private void Add(string name, string address, PciBarRequest[] bars, DriverBinding binding, int group)
    {
        string? error = Host.AddPciDevice(name, PciAddress.Parse(address), bars, binding, group);
        Assert.True(error is null, error);
    }

    private static int Ok(int fd)
    {
        Assert.True(fd >= 0, $"failed: {ErrnoExtensions.FromReturn(fd)}");
        return fd;
    }
}
