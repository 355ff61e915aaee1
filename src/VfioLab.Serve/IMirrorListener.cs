namespace VfioLab.Serve;

/// <summary>Told of every mapping the mirror (<see cref="ClientProcess.Refresh"/>) makes or removes in a simulated
/// process, as it makes it: what <c>vfiolab serve --record</c> needs to recreate the memory a call names.</summary>
internal interface IMirrorListener
{
    /// <summary>The mirror mapped [<paramref name="start"/>, <paramref name="end"/>) in <paramref name="client"/>'s
    /// simulated process, as <paramref name="kind"/>.</summary>
    void Mapped(ClientProcess client, ulong start, ulong end, RealMapping kind);

    /// <summary>The mirror unmapped [<paramref name="start"/>, <paramref name="end"/>).</summary>
    void Unmapped(ClientProcess client, ulong start, ulong end);
}
