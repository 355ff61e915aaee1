namespace VfioLab.Scenarios.Model;

/// <summary>How the simulated host hands out physical frames: one contiguous run, or scattered runs.</summary>
internal enum FrameLayoutKind
{
    Contiguous,
    Scattered,
}
