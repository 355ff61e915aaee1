namespace VfioLab.Tests.Concurrency;

/// <summary>A result a worker did not predict.</summary>
internal sealed class StressFailure(string message) : Exception(message);
