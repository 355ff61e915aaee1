using VfioLab.Abi;
using VfioLab.Diagnostics;

namespace VfioLab.Host;

/// <summary>The device nodes of the host (devtmpfs): path to the driver's open (chrdev_open then f_op->open).</summary>
/// <remarks>Lock: <c>_gate</c> protects <c>_nodes</c>; the factory runs outside it.</remarks>
internal sealed class DeviceRegistry
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Func<Process, DeviceOpenResult>> _nodes = new(StringComparer.Ordinal);

    /// <summary>Creates a device node; the path must be new.</summary>
    public void Register(string path, Func<Process, DeviceOpenResult> open)
    {
        lock (_gate)
        {
            if (!_nodes.TryAdd(path, open))
            {
                HostThrowHelper.ThrowInvalidOperation($"device node {path} exists");
            }
        }
    }

    /// <summary>Removes a device node (open files stay open); false when there was none.</summary>
    public bool Unregister(string path)
    {
        lock (_gate)
        {
            return _nodes.Remove(path);
        }
    }

    /// <summary>Whether the path exists.</summary>
    public bool Exists(string path)
    {
        lock (_gate)
        {
            return _nodes.ContainsKey(path);
        }
    }

    /// <summary>Opens the node for <paramref name="opener"/>: the driver's result, or ENOENT for an unknown path.</summary>
    public DeviceOpenResult Open(Process opener, string path)
    {
        Func<Process, DeviceOpenResult>? open;
        lock (_gate)
        {
            _nodes.TryGetValue(path, out open);
        }
        return open is null
            ? DeviceOpenResult.Fail(Refusals.Refuse(Errno.ENOENT, "do_sys_open", "no device node {4} on this host", text: path))
            : open(opener);
    }
}
