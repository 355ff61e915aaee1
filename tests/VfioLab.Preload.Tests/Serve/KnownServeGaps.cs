namespace VfioLab.Preload.Tests;

/// <summary>
/// Where <c>vfiolab serve</c> does not yet give what docs/serve-protocol.md promises, as the exact difference it makes
/// to a client's output. A test expects Linux's output with the gap applied, so it fails both when the model drifts
/// further and when the gap closes (then delete the entry and the test expects Linux's output unchanged).
/// </summary>
internal static class KnownServeGaps
{
    /// <summary>
    /// The server's tree has no <c>vendor</c>, <c>device</c> or <c>class</c> file under
    /// <c>sys/devices/pci0000:00/ADDR/</c> (the contract lists them): kernel-doc-flow's sysfs cross-check finds no file
    /// and stops there, with exit 1, after reading the same ids from config space.
    /// </summary>
    private const string MissingSysfsIds = "sysfs: vendor ";

    public static string Apply(string client, string linuxOutput)
    {
        if (client != "kernel-doc-flow")
        {
            return linuxOutput;
        }

        var cut = linuxOutput.IndexOf(MissingSysfsIds, StringComparison.Ordinal);
        Assert.True(cut >= 0, "kernel-doc-flow's expected output no longer has the sysfs vendor line the gap is about");
        return linuxOutput[..cut] + "exit 1\n";
    }
}
