using System.Text;
using VfioLab.Abi;
using VfioLab.Addressing;
using VfioLab.Checks;
using VfioLab.Iommu;
using VfioLab.Simulation;
using VfioLab.Tests.Type1;
using VfioLab.Type1;
using VfioLab.Vfio;
using VfioLab.Vfio.Mdev;

namespace VfioLab.Tests.Mdev;

/// <summary>
/// A type1 host (<see cref="Type1TestHost"/>) seen from a mediated device: the mdev's group in a container, its
/// device fd open (so its vendor driver is registered for unmap notifications), and the vendor driver's calls
/// (<c>vfio_pin_pages</c>, <c>vfio_unpin_pages</c>, <c>vfio_dma_rw</c>) as one-liners. Results are raw (count or
/// -errno) so tests assert the exact errno, then the state.
/// </summary>
internal sealed class MdevTestHost
{
    public const ulong MiB = Type1TestHost.MiB;

    /// <param name="t">The host.</param>
    /// <param name="withGpu">Put the GPU's group (an IOMMU domain) into the container too, after the mdev.</param>
    /// <param name="type">The container's IOMMU type.</param>
    /// <param name="openDevice">Open the mdev's device fd.</param>
    public MdevTestHost(Type1TestHost t, bool withGpu = false, uint type = VfioExtension.Type1v2Iommu, bool openDevice = true)
    {
        T = t;
        (Container, MdevGroupFd) = t.Container(Type1TestHost.MdevGroup, type);
        if (withGpu)
        {
            GpuGroupFd = t.AddGroup(Container, Type1TestHost.GpuGroup);
        }
        Device = t.Host.Devices["mdev"].Vfio!;
        Driver = (MdevVendorDriver)Device.Driver;
        if (openDevice)
        {
            DeviceFd = OpenDevice(MdevGroupFd, Type1TestHost.MdevUuid);
        }
    }

    public Type1TestHost T { get; }

    public int Container { get; }

    public int MdevGroupFd { get; }

    public int GpuGroupFd { get; } = -1;

    public int DeviceFd { get; } = -1;

    public VfioDevice Device { get; }

    public MdevVendorDriver Driver { get; }

    public VfioIommu Backend => T.Backend(Container);

    public ulong PageSize => T.PageSize;

    public int OpenDevice(int groupFd, Guid uuid)
    {
        long fd = T.Sys.Ioctl(groupFd, VfioIoctl.GroupGetDeviceFd, Encoding.ASCII.GetBytes(uuid.ToString() + "\0"));
        Assert.True(fd >= 0, $"GET_DEVICE_FD: {ErrnoExtensions.FromReturn(fd)}");
        return (int)fd;
    }

    /// <summary>Maps <paramref name="size"/> bytes of fresh populated anonymous memory at <paramref name="iova"/>;
    /// returns the vaddr.</summary>
    public ulong Map(ulong iova, ulong size, DmaMapFlags flags = DmaMapFlags.Read | DmaMapFlags.Write)
    {
        ulong vaddr = T.MmapAnonymous(size, populate: true);
        Assert.Equal(0, T.Map(Container, iova, vaddr, size, flags));
        return vaddr;
    }

    /// <summary>vfio_pin_pages through the vendor driver; <paramref name="pfns"/> gets the frames.</summary>
    public long Pin(ulong iova, int npage, out Pfn[] pfns, IommuProt prot = IommuProt.Read | IommuProt.Write)
    {
        pfns = new Pfn[Math.Max(npage, 1)];
        return Driver.PinPages(Device, iova, npage, prot, pfns);
    }

    public long Pin(ulong iova, int npage, IommuProt prot = IommuProt.Read | IommuProt.Write) => Pin(iova, npage, out _, prot);

    public bool Unpin(ulong iova, int npage) => Driver.UnpinPages(Device, iova, npage);

    public Errno Rw(ulong iova, byte[] data, bool write, VfioLab.Host.Process? current = null) => MdevVendorDriver.DmaRw(Device, iova, data, write, current);

    /// <summary>The external pins of the mapping at <paramref name="iova"/>, by page IOVA.</summary>
    public IReadOnlyList<KeyValuePair<ulong, VfioPfn>> Vpfns(ulong iova) =>
        [.. Backend.Snapshot().Mappings.Single(m => m.Range.Contains(iova)).Vpfns.SelectMany(PerPage)];

    // The model keeps external pins as runs; tests read them page by page, as the kernel's pfn_list.
    private IEnumerable<KeyValuePair<ulong, VfioPfn>> PerPage(VpfnRun run)
    {
        ulong page = T.Host.Machine.PageSize;
        for (ulong i = 0; i < run.Pages; i++)
        {
            ulong iova = run.Iova + (i * page);
            yield return new(iova, new VfioPfn(new Iova(iova), run.Pfn.Plus(i), run.RefCount));
        }
    }

    public VfioDmaSnapshot Mapping(ulong iova) => Backend.Snapshot().Mappings.Single(m => m.Range.Contains(iova));

    /// <summary>The invariant names the checker reports now.</summary>
    public string[] Violations() => [.. new InvariantChecker(T.Host).Check().Select(v => v.Invariant).Distinct()];

    public void AssertClean()
    {
        IReadOnlyList<InvariantViolation> v = new InvariantChecker(T.Host).Check();
        Assert.True(v.Count == 0, string.Join("\n", v.Select(x => $"{x.Invariant}: {x.Message}")));
    }

    public IommuDomain? GpuDomain => T.DomainOf(Type1TestHost.GpuGroup);

    public static SimulatedHost HostOf(MdevTestHost m) => m.T.Host;
}
