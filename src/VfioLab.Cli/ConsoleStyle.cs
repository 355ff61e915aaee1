namespace VfioLab.Cli;

/// <summary>ANSI colours for one stream, or none: every method returns its text unchanged when colour is off.</summary>
/// <param name="Enabled">Whether escape sequences are written.</param>
internal readonly record struct ConsoleStyle(bool Enabled)
{
    /// <summary>Success (green).</summary>
    public string Ok(string text) => Paint("32", text);

    /// <summary>A failure (red).</summary>
    public string Fail(string text) => Paint("31", text);

    /// <summary>A warning or an error message (yellow).</summary>
    public string Warn(string text) => Paint("33", text);

    /// <summary>Emphasis (bold).</summary>
    public string Strong(string text) => Paint("1", text);

    /// <summary>Secondary detail such as a location (dim).</summary>
    public string Dim(string text) => Paint("2", text);

    private string Paint(string sgr, string text) => Enabled ? $"\u001b[{sgr}m{text}\u001b[0m" : text;
}
