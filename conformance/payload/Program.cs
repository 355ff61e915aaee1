using VfioLab.Client;
using VfioLab.Conformance.Payload;

// rig-payload COMMAND: programs conformance/boot.sh runs inside the guest.
//   edu-dma   the edu device's DMA engine through a type1 container (EduDmaCheck)
if (args is not ["edu-dma"])
{
    Console.Error.WriteLine("usage: rig-payload edu-dma");
    return 2;
}
try
{
    return new EduDmaCheck(Console.Out).Run();
}
catch (Exception e) when (e is VfioException or TimeoutException or InvalidOperationException or IOException)
{
    Console.Out.WriteLine($"edu-dma: error: {e.Message}");
    return 1;
}
