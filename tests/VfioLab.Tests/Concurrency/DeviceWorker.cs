using VfioLab.Abi;

namespace VfioLab.Tests.Concurrency;

/// <summary>The GPU's resets: VFIO_DEVICE_RESET, memory decode off and on through config space, and the
/// slot's hot reset (which try-locks each function's memory_lock: EBUSY under contention, as Linux).</summary>
internal sealed class DeviceWorker(StressRig rig) : StressWorker(rig, "device")
{
    public override int Mappings => 0;

    public override ulong ChargedPages => 0;

    public override ulong PagePins => 0;

    /// <summary>Hot resets refused with EBUSY because another thread held a memory_lock.</summary>
    public int HotResetBusy { get; private set; }

    public override void Step(Random rng)
    {
        switch (rng.Next(3))
        {
            case 0:
                Position = "device reset";
                long r = Sys.Ioctl(Rig.GpuFd, VfioIoctl.DeviceReset, 0);
                Expect(r == 0, $"reset: {E(r)}");
                break;
            case 1:
                Position = "memory off";
                long off = Rig.SetGpuMemory(false);
                Position = "memory on";
                long on = Rig.SetGpuMemory(true);
                Expect(off == 2 && on == 2, $"memory off/on: {E(off)}/{E(on)}");
                break;
            default:
                Position = "hot reset";
                long h = Rig.HotReset();
                Expect(h == 0 || h == Errno.EBUSY.AsReturn(), $"hot reset: {E(h)}");
                HotResetBusy += h == 0 ? 0 : 1;
                break;
        }
    }
}
