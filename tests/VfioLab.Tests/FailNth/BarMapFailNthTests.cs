using VfioLab.Abi;
using VfioLab.Diagnostics;
using VfioLab.Host;
using VfioLab.Tests.Concurrency;
using VfioLab.Vfio.Pci;

namespace VfioLab.Tests.FailNth;

/// <summary>
/// vfio-pci maps a BAR on its first mmap or pread/pwrite (vfio_pci_core_setup_barmap: pci_iomap, ENOMEM) and keeps
/// it until close_device. A failed pci_iomap leaves the BAR unmapped and creates no VMA; later uses of a mapped
/// BAR have no failure point; a close unmaps every BAR, so the next open's first use can fail again.
/// </summary>
public sealed class BarMapFailNthTests
{
    private const ulong KiB = StressRig.KiB;

    // The audio function's BAR0 has never been mmapped or accessed; its fd is open.
    private static (StressRig Rig, VfioPciDevice Audio) Rig()
    {
        var rig = new StressRig();
        VfioPciDevice audio = VfioPciDriver.State(rig.Host.Devices["audio"].Vfio!);
        Assert.Equal(0, audio.BarMap);
        return (rig, audio);
    }

    private static long MmapBar0(StressRig rig) =>
        rig.Sys.Mmap(0, 64 * KiB, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Shared, rig.AudioFd, VfioPci.IndexToOffset(0u));

    [Fact]
    public void MmapBar_FirstUseIomapFails_ReturnsENOMEMWithNoVmaAndTheBarUnmapped()
    {
        (StressRig rig, VfioPciDevice audio) = Rig();
        long addr = -1;

        int points = FailNthSweep.Run(rig.Host, () =>
        {
            addr = MmapBar0(rig);
            if (addr < 0)
            {
                Assert.Equal((0, 0), (audio.BarMap, audio.Mapping.SnapshotVmas().Length));
            }
            return addr;
        }, [Errno.ENOMEM]);

        Assert.Equal(2, points); // mmap_region's vm_area_alloc, then the BAR's first pci_iomap in the driver's mmap
        Assert.Equal((1, 1), (audio.BarMap, audio.Mapping.SnapshotVmas().Length));
        // A second mmap keeps the barmap: only the new VMA's allocation can fail.
        Assert.Equal(1, FailNthSweep.Run(rig.Host, () => MmapBar0(rig), [Errno.ENOMEM]));
    }

    [Fact]
    public void PreadBar_FirstUseIomapFails_ReturnsENOMEMAndLeavesTheBarUnmapped()
    {
        (StressRig rig, VfioPciDevice audio) = Rig();
        byte[] b = new byte[4];

        int points = FailNthSweep.Run(rig.Host, () =>
        {
            long ret = rig.Sys.Pread(rig.AudioFd, b, VfioPci.IndexToOffset(0u));
            if (ret < 0)
            {
                Assert.Equal(0, audio.BarMap);
            }
            return ret;
        }, [Errno.ENOMEM]);

        Assert.Equal((1, 1), (points, audio.BarMap));
        Assert.Equal(0, FailNthSweep.Run(rig.Host, () => rig.Sys.Pwrite(rig.AudioFd, b, VfioPci.IndexToOffset(0u)), []));
    }

    [Fact]
    public void CloseDevice_MappedBar_UnmapsItSoTheNextOpenFailsAgain()
    {
        (StressRig rig, VfioPciDevice audio) = Rig();
        Assert.Equal(4, rig.Sys.Pread(rig.AudioFd, new byte[4], VfioPci.IndexToOffset(0u)));
        Assert.Equal(1, audio.BarMap);

        Assert.Equal(0, rig.Sys.Close(rig.AudioFd));

        Assert.Equal(0, audio.BarMap);
        long fd = rig.Sys.Ioctl(rig.AudioGroupFd, VfioIoctl.GroupGetDeviceFd, [.. System.Text.Encoding.UTF8.GetBytes(StressRig.Audio), 0]);
        Assert.True(fd >= 0);
        rig.Host.Faults.Arm(1, FaultSite.PciIomap);
        Assert.Equal(Errno.ENOMEM.AsReturn(), rig.Sys.Pread((int)fd, new byte[4], VfioPci.IndexToOffset(0u)));
        rig.Host.Faults.Arm(0);
        Assert.Equal(0, audio.BarMap);
    }
}
