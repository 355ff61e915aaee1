using System.Net.Sockets;

namespace VfioLab.Serve;

/// <summary>What a VFIO file is, for marshalling its ioctls.</summary>
internal enum FileKind
{
    Container,
    Group,
    Device,
}

/// <summary>One open file of the model: its fd number (the same in every simulated process holding it, as fork keeps
/// numbers) and the processes holding it.</summary>
internal sealed class ModelFile(FileKind kind, int fd, string path, ClientProcess opener)
{
    public FileKind Kind { get; } = kind;

    public int Fd { get; } = fd;

    public string Path { get; } = path;

    public HashSet<ClientProcess> Holders { get; } = [opener];

    public override string ToString() => $"{Path} (model fd {Fd})";
}

/// <summary>One client connection: the session connection of a process image, or one open VFIO file.</summary>
internal sealed class Connection(Socket socket, int id, int peerPid)
{
    public Socket Socket { get; } = socket;

    public int Id { get; } = id;

    /// <summary>The peer's pid (SO_PEERCRED at accept), 0 when unknown.</summary>
    public int PeerPid { get; } = peerPid;

    /// <summary>The client's inode of its end of the socket (HELLO/OPEN/ATTACH), 0 before.</summary>
    public ulong Inode { get; set; }

    public ModelFile? File { get; set; }

    public bool IsSession { get; set; }

    public override string ToString() => File is null ? $"connection {Id}" : $"connection {Id} ({File})";
}
