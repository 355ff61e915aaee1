using VfioLab.Abi;
using VfioLab.Host;

namespace VfioLab.Vfio;

/// <summary>
/// An open <c>/dev/vfio/vfio</c> (vfio_fops in container.c): ioctls of the core, then of the
/// backend. Closing it forgets the container once no group holds it.
/// </summary>
internal sealed class VfioContainerFile(VfioContainer container) : VfioFileOperations
{
    /// <summary>The container behind the file.</summary>
    public VfioContainer Container { get; } = container;

    /// <inheritdoc />
    public override void Release() => Container.FileReleased();

    protected override long Dispatch(SyscallContext ctx, uint request, ref IoctlArgument arg)
    {
        switch (request)
        {
            case VfioIoctl.GetApiVersion:
                return VfioContainer.GetApiVersion();
            case VfioIoctl.CheckExtension:
                return Container.CheckExtension(arg.Value);
            case VfioIoctl.SetIommu:
                return Container.SetIommu(arg.Value, ctx.Process).AsReturn();
            default:
                return Container.BackendIoctl(new VfioCallContext(ctx), request, ref arg);
        }
    }
}
