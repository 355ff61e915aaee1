using VfioLab.Abi;
using VfioLab.Client;
using VfioLab.Linux;

namespace VfioLab.Tests.Linux;

/// <summary>The real-kernel surface, run against this machine's kernel: the calls answer as Linux does (values or
/// -errno), and the typed client turns a missing or wrong device into a <see cref="VfioException"/>. Needs no VFIO
/// hardware: it uses /dev/null, a temporary file and anonymous memory.</summary>
public sealed class LinuxSyscallsTests
{
    private static readonly LinuxSyscalls Sys = new();

    [Fact]
    public void Open_MissingPath_ReturnsMinusENOENT()
    {
        Assert.Equal(Errno.ENOENT.AsReturn(), Sys.Open("/nonexistent-vfiolab/vfio"));
    }

    [Fact]
    public void Close_BadFd_ReturnsMinusEBADF()
    {
        Assert.Equal(Errno.EBADF.AsReturn(), Sys.Close(-1));
    }

    [Fact]
    public void Ioctl_VfioRequestOnDevNull_ReturnsMinusENOTTY()
    {
        int fd = Sys.Open("/dev/null");
        Assert.True(fd >= 0);
        try
        {
            Assert.Equal(Errno.ENOTTY.AsReturn(), Sys.Ioctl(fd, VfioIoctl.GetApiVersion, 0));
            Span<byte> arg = stackalloc byte[VfioIommuType1DmaMap.SizeOf];
            Assert.Equal(Errno.ENOTTY.AsReturn(), Sys.Ioctl(fd, VfioIoctl.IommuMapDma, arg));
        }
        finally
        {
            Assert.Equal(0, Sys.Close(fd));
        }
    }

    [Fact]
    public void ContainerOpen_NotAVfioDevice_ThrowsENOTTY_AndClosesTheFd()
    {
        var sys = new LinuxSyscalls();
        VfioException e = Assert.Throws<VfioException>(() => Container.Open(sys, "/dev/null"));
        Assert.Equal(Errno.ENOTTY, e.Errno);
        Assert.Contains("get_api_version", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ContainerOpen_NoVfioModule_ThrowsENOENT()
    {
        if (File.Exists("/dev/vfio/vfio"))
        {
            return; // a host with VFIO: this test is about one without it
        }
        VfioException e = Assert.Throws<VfioException>(() => Container.Open(Sys));
        Assert.Equal(Errno.ENOENT, e.Errno);
    }

    [Fact]
    public void Memory_MmapWriteRead_RoundTrips_AndUnmappedAnswersEFAULT()
    {
        long address = Sys.Mmap(0, 8192, MemoryProtection.Read | MemoryProtection.Write, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        Assert.True(address > 0, $"mmap answered {address}");
        byte[] data = [1, 2, 3, 4, 5];
        Assert.Equal(0, Sys.WriteMemory((ulong)address + 4094, data));
        byte[] back = new byte[5];
        Assert.Equal(0, Sys.ReadMemory((ulong)address + 4094, back));
        Assert.Equal(data, back);

        Assert.Equal(Errno.EINVAL.AsReturn(), Sys.Munmap((ulong)address + 1, 4096));
        Assert.Equal(0, Sys.Munmap((ulong)address, 8192));
        Assert.Equal(Errno.EFAULT.AsReturn(), Sys.ReadMemory((ulong)address, back));
        Assert.Equal(Errno.EFAULT.AsReturn(), Sys.WriteMemory((ulong)address, data));
    }

    [Fact]
    public void Memory_ReadOnlyMapping_WriteAnswersEFAULT()
    {
        long address = Sys.Mmap(0, 4096, MemoryProtection.Read, MmapFlags.Private | MmapFlags.Anonymous, -1, 0);
        Assert.True(address > 0);
        try
        {
            Assert.Equal(Errno.EFAULT.AsReturn(), Sys.WriteMemory((ulong)address, [1]));
            byte[] one = new byte[1];
            Assert.Equal(0, Sys.ReadMemory((ulong)address, one));
            Assert.Equal(0, one[0]);
        }
        finally
        {
            Sys.Munmap((ulong)address, 4096);
        }
    }

    [Fact]
    public void PreadPwrite_OnAFile_AtOffsets()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vfiolab-linux-{Guid.NewGuid():n}");
        File.WriteAllBytes(path, new byte[16]);
        try
        {
            int fd = Sys.Open(path);
            Assert.True(fd >= 0);
            Assert.Equal(3, Sys.Pwrite(fd, [7, 8, 9], 10));
            byte[] back = new byte[4];
            Assert.Equal(4, Sys.Pread(fd, back, 9));
            Assert.Equal(new byte[] { 0, 7, 8, 9 }, back);
            Assert.Equal(Errno.EINVAL.AsReturn(), Sys.Pread(fd, back, ulong.MaxValue));
            Assert.Equal(0, Sys.Close(fd));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Exit_ClosesWhatThisSurfaceOpened()
    {
        // Checked through /proc/self/fd without touching the fd number again: another test may reuse it at once.
        string path = Path.Combine(Path.GetTempPath(), $"vfiolab-exit-{Guid.NewGuid():n}");
        File.WriteAllBytes(path, [0]);
        try
        {
            var sys = new LinuxSyscalls();
            int fd = sys.Open(path);
            Assert.True(fd >= 0);
            Assert.Equal(path, new FileInfo($"/proc/self/fd/{fd}").LinkTarget);
            sys.Exit();
            Assert.DoesNotContain(Directory.GetFiles("/proc/self/fd"), link => Target(link) == path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string? Target(string link)
    {
        try
        {
            return new FileInfo(link).LinkTarget;
        }
        catch (IOException)
        {
            return null; // closed meanwhile
        }
    }

    [Fact]
    public void Fork_IsNotOffered()
    {
        Assert.Throws<NotSupportedException>(() => Sys.Fork());
    }
}
