using VfioLab.Abi;

namespace VfioLab.Tests.Abi;

/// <summary>Errno values, kernel return values and errno names.</summary>
public sealed class ErrnoExtensionsTests
{
    [Theory]
    [InlineData(Errno.EPERM, 1)]
    [InlineData(Errno.EFAULT, 14)]
    [InlineData(Errno.EINVAL, 22)]
    [InlineData(Errno.ENOTTY, 25)]
    [InlineData(Errno.ENOSPC, 28)]
    [InlineData(Errno.EOVERFLOW, 75)]
    [InlineData(Errno.EOPNOTSUPP, 95)]
    public void Values_AreLinuxNumbers(Errno errno, int expected)
    {
        Assert.Equal(expected, (int)errno);
    }

    [Fact]
    public void AsReturn_Errno_IsNegated()
    {
        Assert.Equal(-22L, Errno.EINVAL.AsReturn());
        Assert.Equal(0L, Errno.None.AsReturn());
    }

    [Theory]
    [InlineData(-22L, Errno.EINVAL)]
    [InlineData(-12L, Errno.ENOMEM)]
    [InlineData(0L, Errno.None)]
    [InlineData(7L, Errno.None)]
    public void FromReturn_SyscallResult_ReturnsErrno(long ret, Errno expected)
    {
        Assert.Equal(expected, ErrnoExtensions.FromReturn(ret));
    }

    [Fact]
    public void FromReturn_AsReturn_RoundTripsEveryErrno()
    {
        Assert.All(Enum.GetValues<Errno>(), e => Assert.Equal(e, ErrnoExtensions.FromReturn(e.AsReturn())));
    }

    [Theory]
    [InlineData("EINVAL", Errno.EINVAL)]
    [InlineData("E2BIG", Errno.E2BIG)]
    [InlineData("ETIMEDOUT", Errno.ETIMEDOUT)]
    public void TryParse_ErrnoName_ReturnsErrno(string name, Errno expected)
    {
        Assert.True(ErrnoExtensions.TryParse(name, out Errno errno));
        Assert.Equal(expected, errno);
    }

    [Theory]
    [InlineData("einval")]
    [InlineData("None")]
    [InlineData("EFOO")]
    [InlineData("22")]
    [InlineData("E")]
    [InlineData(" EINVAL")]
    [InlineData("EPERM,ENOENT")]
    public void TryParse_NotAnErrnoName_ReturnsFalse(string name)
    {
        Assert.False(ErrnoExtensions.TryParse(name, out Errno errno));
        Assert.Equal(Errno.None, errno);
    }
}
