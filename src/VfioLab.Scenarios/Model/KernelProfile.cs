namespace VfioLab.Scenarios.Model;

/// <summary>The behaviour profile: <c>seeds</c> (upstream type1 plus the seeds' device-memory design) or <c>linux-6.18</c> (upstream exactly).</summary>
internal enum KernelProfile
{
    Seeds,
    Linux618,
}
