namespace VfioLab.Tests.Cli;

/// <summary>A scratch directory for scenario files, deleted with everything in it.</summary>
internal sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("vfiolab-cli-").FullName;

    /// <summary>Writes <paramref name="text"/> to <paramref name="name"/> here; returns its path.</summary>
    public string Write(string name, string text)
    {
        string path = System.IO.Path.Combine(Path, name);
        File.WriteAllText(path, text);
        return path;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
