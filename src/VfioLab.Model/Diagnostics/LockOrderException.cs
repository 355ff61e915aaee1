namespace VfioLab.Diagnostics;

/// <summary>A lock taken against the order of <see cref="LockRank"/>, or a <c>*Locked</c> method entered without its lock: a bug in the model (debug builds only).</summary>
internal sealed class LockOrderException(string message) : InvalidOperationException(message);
