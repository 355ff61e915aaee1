namespace VfioLab.Scenarios.Running;

/// <summary>A step the real kernel's machine cannot carry out as written (the device cannot issue that DMA): the step
/// is reported as model-only with the reason, never judged.</summary>
internal sealed class RealStepUnavailable(string reason) : Exception(reason);
