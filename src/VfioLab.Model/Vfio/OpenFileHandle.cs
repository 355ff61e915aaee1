using VfioLab.Host;

namespace VfioLab.Vfio;

/// <summary>A Host <see cref="OpenFile"/> as the VFIO core references it (get_file/fput).</summary>
internal sealed class OpenFileHandle(OpenFile file) : IVfioFileHandle
{
    /// <inheritdoc />
    public void AddReference() => file.Get();

    /// <inheritdoc />
    public void DropReference() => file.Put();
}
