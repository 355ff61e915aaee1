namespace VfioLab.Preload.Tests;

/// <summary>Where the repository's native code, examples and build output are, found from the test assembly.</summary>
internal static class RepoPaths
{
    private static readonly Lazy<string> LazyRoot = new(FindRoot);

    public static string Root => LazyRoot.Value;

    public static string Native => Path.Combine(Root, "native", "preload");

    /// <summary>The make output directory the tests build into (native/preload/build).</summary>
    public static string Build => Path.Combine(Native, "build");

    public static string Clients => Path.Combine(Root, "examples", "clients");

    public static string Preload => Path.Combine(Build, "libvfiolab-preload.so");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "VfioLab.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no VfioLab.slnx above {AppContext.BaseDirectory}");
    }
}
