using VfioLab.Abi;

namespace VfioLab.Tests.Concurrency;

/// <summary>CPU reads and writes of the GPU's BAR mmap: they fault under the mmap lock and memory_lock,
/// racing with the device worker's zaps; SIGBUS (EIO) while decode is off, as Linux.</summary>
internal sealed class BarWorker(StressRig rig) : StressWorker(rig, "bar")
{
    public override int Mappings => 0;

    public override ulong ChargedPages => 0;

    public override ulong PagePins => 0;

    public override void Step(Random rng)
    {
        ulong at = Rig.BarVaddr + ((ulong)rng.Next((int)(StressRig.BarMapSize / 4)) * 4);
        byte[] b = new byte[4];
        bool write = rng.Next(2) == 0;
        Position = $"bar {(write ? "write" : "read")} 0x{at:x}";
        long r = write ? Sys.WriteMemory(at, b) : Sys.ReadMemory(at, b);
        Expect(r == 0 || r == Errno.EIO.AsReturn(), $"{Position}: {E(r)}");
    }
}
