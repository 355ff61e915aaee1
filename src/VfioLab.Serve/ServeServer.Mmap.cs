using VfioLab.Abi;

namespace VfioLab.Serve;

public sealed partial class ServeServer
{
    // Device-region mmaps (MMAP_PREPARE/MMAP_COMMIT) are not served yet: the client's mmap fails with ENODEV, as
    // mmap of a file that has no mmap does, and the server says so.
    private Reply MmapPrepare(ClientProcess client, ModelFile file, ReadOnlySpan<byte> p)
    {
        Log($"{client}: mmap of {file.Path} asked; device-region mmaps are not served by this server yet (ENODEV)");
        _ = p;
        return Reply.Of(Errno.ENODEV.AsReturn(), $"{file.Path} (device mmaps not served yet)");
    }

    private Reply MmapCommit(ClientProcess client, ModelFile file, ReadOnlySpan<byte> p) => MmapPrepare(client, file, p);
}
